"""Issue 3 on real parts: moto's server for the ECR/STS APIs, a real registry (behind a loopback
proxy that checks ECR-style Basic auth and can expire tokens or inject faults) as the data plane.

IMGBUILD_ECR_ENDPOINT maps the ECR host moto names to the proxy; nothing else is faked.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from tests.aws_fixtures import ACCOUNT, REGION, aws_env, moto_calls, moto_server  # noqa: F401
from tests.conftest import Project, layers_by_name
from tests.registry_fixtures import (  # noqa: F401
    proxied_registry_fixture,
    registry_digest,
    scratch_registry_fixture,
)
from tests.registry_proxy import RegistryProxy

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.engines]

ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
WRITE_CALLS = {
    "CreateRepository",
    "PutLifecyclePolicy",
    "PutImageScanningConfiguration",
    "PutImageTagMutability",
    "TagResource",
}


class Tokens:
    """What moto's GetAuthorizationToken hands out, in order (moto's own is one fixed token,
    already expired); the last one repeats. `calls` counts the requests."""

    passwords: ClassVar[list[str]] = [f"{ACCOUNT}-auth-token"]
    expires = datetime.datetime(2015, 1, 1, tzinfo=datetime.UTC)
    calls = 0

    @classmethod
    def next_password(cls) -> str:
        cls.calls += 1
        return cls.passwords.pop(0) if len(cls.passwords) > 1 else cls.passwords[0]

    @classmethod
    def current(cls) -> str:
        return cls.passwords[0]


@pytest.fixture
def tokens(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> type[Tokens]:  # noqa: F811
    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse

    monkeypatch.setattr(Tokens, "passwords", [f"{ACCOUNT}-auth-token"])
    monkeypatch.setattr(Tokens, "expires", datetime.datetime(2015, 1, 1, tzinfo=datetime.UTC))
    monkeypatch.setattr(Tokens, "calls", 0)

    def get_authorization_token(self: Any) -> Any:
        token = base64.b64encode(f"AWS:{Tokens.next_password()}".encode()).decode()
        data = {
            "authorizationToken": token,
            "expiresAt": Tokens.expires,
            "proxyEndpoint": f"https://{ECR_HOST}",
        }
        return ActionResult({"authorizationData": [data]})

    monkeypatch.setattr(ECRResponse, "get_authorization_token", get_authorization_token)
    return Tokens


@pytest.fixture
def ecr_project(
    project: Project,
    proxied_registry: RegistryProxy,
    tokens: type[Tokens],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Project:
    proxied_registry.require_basic("AWS", {tokens.current()})
    project.edit_config("registry: ${IMGBUILD_DEV_REGISTRY:-127.0.0.1:5000}", "registry: ecr")
    project.edit_config("app:\n", "ecr:\n  keep_images: 5\n  tags: {team: web}\napp:\n")
    monkeypatch.setenv("IMGBUILD_ECR_ENDPOINT", proxied_registry.address)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "user-docker-config"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return project


def ecr_client() -> Any:
    return boto3.client("ecr", region_name=REGION)


def test_push_creates_repositories_then_second_run_changes_nothing(
    ecr_project: Project,
    moto_calls: list[tuple[str, str]],  # noqa: F811
) -> None:
    first = layers_by_name(ecr_project.run_json("app", "--push"))
    assert all(layer["digest"] for layer in first.values())
    repos = {r["repositoryName"]: r for r in ecr_client().describe_repositories()["repositories"]}
    names = ecr_project.name
    assert set(repos) == {f"{names}-ruby", f"{names}-base", f"{names}-app"}
    app = repos[f"{names}-app"]
    assert app["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert app["imageScanningConfiguration"]["scanOnPush"] is True
    filters = {f["filter"] for f in app["imageTagMutabilityExclusionFilters"]}
    assert {"latest", "main", "pr-*", "branch-*"} <= filters
    policy = json.loads(
        ecr_client().get_lifecycle_policy(repositoryName=f"{names}-app")["lifecyclePolicyText"]
    )
    assert [r["selection"]["countNumber"] for r in policy["rules"]][1:] == [5, 5, 7]
    artifacts = policy["rules"][1]["selection"]["tagPatternList"]
    assert artifacts == ["*.inputs", "sha256-*.sizes"]  # before the content-key images' rule
    tags = ecr_client().list_tags_for_resource(resourceArn=app["repositoryArn"])["tags"]
    assert {"Key": "team", "Value": "web"} in tags

    moto_calls.clear()
    second = layers_by_name(ecr_project.run_json("app", "--push"))
    assert [layer["pushed"] for layer in second.values()] == [False, False, False]
    assert [layer["built"] for layer in second.values()] == [False, False, False]
    writes = [action for _, action in moto_calls if action in WRITE_CALLS]
    assert writes == []


def _scan_cmdlines(needles: list[str], found: list[str], stop: threading.Event) -> None:
    deadline = time.monotonic() + 600
    while not stop.is_set() and time.monotonic() < deadline:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found.extend(f"{cmdline}: {n}" for n in needles if n in text)
        stop.wait(0.05)


def test_token_never_in_argv_logs_or_docker_config(
    ecr_project: Project, tokens: type[Tokens]
) -> None:
    secret = tokens.current()
    needles = [secret, base64.b64encode(f"AWS:{secret}".encode()).decode()]
    found: list[str] = []
    stop = threading.Event()
    scanner = threading.Thread(target=_scan_cmdlines, args=(needles, found, stop), daemon=True)
    scanner.start()
    try:
        result = ecr_project.run("--debug", "app", "--push")
    finally:
        stop.set()
        scanner.join(timeout=5)
    assert result.returncode == 0, result.stderr[-3000:]
    assert found == []
    for needle in needles:
        assert needle not in result.stdout + result.stderr
    user_config = Path(os.environ["DOCKER_CONFIG"])
    assert not user_config.exists() or all(
        needle not in p.read_text(errors="replace")
        for p in user_config.rglob("*")
        if p.is_file()
        for needle in needles
    )
    leftovers = list(Path(os.environ["TMPDIR"]).glob("imgbuild-docker-*"))
    assert leftovers == [], "the private docker config must be removed after the run"


def test_content_tag_is_immutable_latest_moves(
    ecr_project: Project,
    scratch_registry: Any,
) -> None:
    first = layers_by_name(ecr_project.run_json("app", "--push"))
    refused = ecr_project.run("app", "--push", "--no-cache")
    assert refused.returncode == 9, refused.stderr[-2000:]
    assert "immutable" in refused.stderr
    assert (
        registry_digest(
            scratch_registry.address, f"{ecr_project.name}-app", first["app"]["key"][:12]
        )
        == (first["app"]["digest"])
    )

    (ecr_project.root / "lib" / "moved.rb").write_text(f"MOVED = {time.time_ns()}\n")
    second = layers_by_name(ecr_project.run_json("app", "--push"))
    assert second["app"]["digest"] != first["app"]["digest"]
    assert (
        registry_digest(scratch_registry.address, f"{ecr_project.name}-app", "latest")
        == second["app"]["digest"]
    )


def test_expired_token_mid_run_reauthenticates(
    ecr_project: Project,
    proxied_registry: RegistryProxy,
    tokens: type[Tokens],
) -> None:
    # A token imgbuild may keep for the whole run, like a real 12-hour one ...
    tokens.expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=12)
    tokens.passwords = ["token-one", "token-two"]
    proxied_registry.require_basic("AWS", {"token-one"})
    # ... which the registry stops accepting a few requests into the push.
    proxied_registry.expire_after(5, "token-two")
    result = ecr_project.run("app", "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert tokens.calls >= 2, "imgbuild must have asked for a new token after the 401"
    assert "renewing" in result.stderr
    layers = layers_by_name(json.loads(result.stdout))
    assert all(layer["digest"] for layer in layers.values())


def test_registry_500s_are_retried(
    ecr_project: Project,
    proxied_registry: RegistryProxy,
    scratch_registry: Any,
) -> None:
    proxied_registry.inject_faults(ratio=0.2, kinds=("500",), seed=7, max_faults=6)
    result = ecr_project.run("app", "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    layers = layers_by_name(json.loads(result.stdout))
    assert proxied_registry.stats.faults_injected > 0
    proxied_registry.clear_faults()
    for layer in layers.values():
        tag = layer["key"][:12]
        assert (
            registry_digest(scratch_registry.address, f"{ecr_project.name}-{layer['name']}", tag)
            == (layer["digest"])
        )


def test_promote_copies_chain_by_digest_without_rebuilding(
    project: Project,
    scratch_registry: Any,
) -> None:
    source = layers_by_name(project.run_json("app", "--push"))
    result = project.run(
        "promote", "app", "--from", project.dev.registry, "--to", scratch_registry.address, "--json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "building" not in result.stderr
    promoted = {p["layer"]: p for p in json.loads(result.stdout)["layers"]}
    for name, layer in source.items():
        tag = layer["key"][:12]
        assert promoted[name]["digest"] == layer["digest"]
        assert (
            registry_digest(scratch_registry.address, f"{project.name}-{name}", tag)
            == layer["digest"]
        )
    again = project.run(
        "promote", "app", "--from", project.dev.registry, "--to", scratch_registry.address, "--json"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert [p["blobs_copied"] for p in json.loads(again.stdout)["layers"]] == [0, 0, 0]
