"""Shared fixtures. Integration tests use the real daemon, BuildKit and the local registry that
`make services` brings up; when those are missing the tests fail (never skip) with what to run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# Every `imgbuild` the suite starts runs in its own process unless a test starts a server of its
# own (tests/test_server.py): a developer's running server must not serve the suite's commands.
os.environ["IMGBUILD_SERVER"] = "off"
EXAMPLE = REPO / "examples" / "hello"
DEV_ENV_FILE = (
    Path(os.environ.get("IMGBUILD_DEV_HOME", Path.home() / ".cache" / "imgbuild-dev")) / "env"
)


@dataclass(frozen=True)
class DevEnv:
    registry: str
    base_image: str
    home: Path


def _read_dev_env() -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k.startswith("IMGBUILD_DEV_")}
    if DEV_ENV_FILE.is_file():
        for line in DEV_ENV_FILE.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            values.setdefault(key, value)
    return values


@pytest.fixture(scope="session")
def dev() -> DevEnv:
    values = _read_dev_env()
    if "IMGBUILD_DEV_REGISTRY" not in values:
        pytest.fail("the dev services are not set up; run `make services` (or `make test`)")
    probe = subprocess.run(["docker", "version"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.fail("no Docker daemon answers; run `make services`")
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return DevEnv(
        registry=values["IMGBUILD_DEV_REGISTRY"],
        base_image=values["IMGBUILD_DEV_BASE_IMAGE"],
        home=Path(values["IMGBUILD_DEV_HOME"]),
    )


@dataclass
class Project:
    """A private copy of the example app plus a private imgbuild cache dir."""

    root: Path
    cache_dir: Path
    dev: DevEnv

    @property
    def config(self) -> Path:
        return self.root / "imgbuild.yaml"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"IMGBUILD_CACHE_DIR": str(self.cache_dir), "CI": "true"})
        env.pop("IMGBUILD_REGISTRY", None)
        env.update(extra or {})
        return env

    def run(
        self, *args: str, extra_env: Mapping[str, str] | None = None, timeout: float = 1500
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "buildkit", "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env(extra_env),
            timeout=timeout,
            check=False,
        )

    def run_json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout)

    def edit_config(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text, f"{old!r} not in the config"
        self.config.write_text(text.replace(old, new, 1))


@pytest.fixture
def project(tmp_path: Path, dev: DevEnv) -> Project:
    root = tmp_path / "hello"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("gems-src"))
    return Project(root=root, cache_dir=tmp_path / "cache", dev=dev)


def layers_by_name(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in document["layers"]}


FRESH_BRIDGE = "imgbfresh0"


@dataclass(frozen=True)
class FreshDaemon:
    """A second, empty dockerd: what a wiped daemon or a new CI machine looks like."""

    host: str


@pytest.fixture(scope="session")
def fresh_daemon(tmp_path_factory: pytest.TempPathFactory, dev: DevEnv) -> Iterator[FreshDaemon]:
    root = tmp_path_factory.mktemp("dockerd")
    sock = root / "docker.sock"
    # Its own bridge: a second dockerd started with --bridge=none deletes the host's docker0
    # (moby's removeDefaultBridgeInterface), breaking the main daemon's networking.
    probe = subprocess.run(["ip", "link", "show", FRESH_BRIDGE], check=False, capture_output=True)
    if probe.returncode:
        subprocess.run(["ip", "link", "add", FRESH_BRIDGE, "type", "bridge"], check=True)
    log = (root / "dockerd.log").open("w")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "-H",
            f"unix://{sock}",
            f"--bridge={FRESH_BRIDGE}",
            "--iptables=false",
            "--ip-masq=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    host = f"unix://{sock}"
    env = {**os.environ, "DOCKER_HOST": host}
    deadline = time.monotonic() + 60
    while subprocess.run(
        ["docker", "version"], env=env, capture_output=True, check=False
    ).returncode:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"a second dockerd did not start; see {root / 'dockerd.log'}")
        time.sleep(0.2)  # polling the daemon's socket, bounded by the deadline
    yield FreshDaemon(host=host)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root / "data", ignore_errors=True)
