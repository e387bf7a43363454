"""The generated buildspecs, run the way CodeBuild runs them, inside a build container.

A checkout of the example app (with its rendered buildspecs) is mounted at CODEBUILD_SRC_DIR in a
container that has the host's docker socket, the docker CLI and buildx, Python and git
(tests/data/codebuild/runner.Dockerfile). tests/codebuild_runner.py runs a buildspec's phases in
one shell there with the CODEBUILD_* variables of a webhook build and the project's environment
variables. imgbuild is installed by the buildspec's own install phase, from a wheel of this
checkout (codebuild.install points pip at a local wheelhouse). Each run changes one app file, so
the app layer is really built and pushed to the local registry. The chain is named `cbtest`, so
the release tags these tests move are their own; its ruby and base images are copied inside the
registry from the example's `hello-*` repositories (same content keys), so nothing is recompiled.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.codebuild_runner import BuildResult, Runner
from tests.conftest import EXAMPLE, REPO, DevEnv

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DATA = Path(__file__).parents[1] / "data" / "codebuild"
SRC_DIR = "/codebuild/output/src1234/src/github.com/acme/hello"
ACCOUNT = "123456789012"
REGION = "ap-northeast-1"
NAME = "cbtest"
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def docker(*args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout.strip()


def _plugin(name: str) -> Path:
    for folder in (
        "/usr/local/libexec/docker/cli-plugins",
        "/usr/libexec/docker/cli-plugins",
        str(Path.home() / ".docker" / "cli-plugins"),
    ):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    pytest.fail(f"no {name} docker CLI plugin on this machine; run `make services`")


@pytest.fixture(scope="session")
def runner_image(dev: DevEnv, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The build container image, rebuilt only when its Dockerfile or the host's CLI changes."""
    cli = Path(shutil.which("docker") or pytest.fail("no docker CLI on PATH"))
    buildx = _plugin("docker-buildx")
    digest = hashlib.sha256()
    for part in (DATA / "runner.Dockerfile", cli, buildx):
        digest.update(part.read_bytes())
    digest.update(dev.base_image.encode())
    tag = f"imgbuild-test/codebuild-runner:{digest.hexdigest()[:12]}"
    probe = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    if probe.returncode != 0:
        context = tmp_path_factory.mktemp("runner-image")
        shutil.copy(DATA / "runner.Dockerfile", context / "Dockerfile")
        shutil.copy(cli, context / "docker")
        shutil.copy(buildx, context / "docker-buildx")
        docker(
            "build",
            "-q",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={dev.base_image}",
            "-t",
            tag,
            str(context),
            timeout=1200,
        )
    return tag


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _runner_python(image: str) -> str:
    """The runner image's Python ("3.11"): its wheels must fit it, not the suite's Python (3.13
    on a Debian 13 machine, whose binary wheels, pyyaml's, a 3.11 runner cannot install)."""
    return docker(
        "run", "--rm", "--entrypoint", "python3", image, "-c",
        "import sys; print('%d.%d' % sys.version_info[:2])",
    )  # fmt: skip


@pytest.fixture(scope="session")
def wheelhouse(dev: DevEnv, runner_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """imgbuild's dependencies for the runner's Python (cached in the dev home per dependency
    list and Python) + a fresh wheel of this checkout, so the buildspec's `pip install` needs no
    package index."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    python = _runner_python(runner_image)
    key = hashlib.sha256(json.dumps([sorted(deps), python]).encode()).hexdigest()
    cached = dev.home / "codebuild-wheels" / key[:16]
    if not cached.is_dir():
        partial = tmp_path_factory.mktemp("wheels")
        abi = "cp" + python.replace(".", "")
        platforms = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "linux_x86_64")
        target = ["--python-version", python, "--implementation", "cp", "--abi", abi]
        target += [arg for platform in platforms for arg in ("--platform", platform)]
        _pip("download", "--only-binary=:all:", *target, "-d", str(partial), *deps)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(partial, cached.with_suffix(".tmp"), dirs_exist_ok=True)
        cached.with_suffix(".tmp").rename(cached)
    house = tmp_path_factory.mktemp("wheelhouse")
    for wheel in cached.iterdir():
        shutil.copy(wheel, house)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(house), str(REPO))
    return house


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def make_checkout(root: Path, dev: DevEnv) -> str:
    """The repository CodeBuild would clone: the example app, its config with a codebuild
    section, a unique app file, and buildspecs/ rendered by imgbuild. Returns the commit."""
    app = root / "examples" / "hello"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("gems-src"))
    example = (EXAMPLE / "imgbuild.yaml").read_text()
    assert "\nname: hello\n" in example
    (app / "imgbuild.yaml").write_text(
        example.replace("\nname: hello\n", f"\nname: {NAME}\n") + "codebuild:\n"
        "  github: https://github.com/acme/hello\n"
        f"  service_role: arn:aws:iam::{ACCOUNT}:role/{NAME}-codebuild\n"
        "  install: pip install --no-index --find-links /wheels imgbuild\n"
        "  env:\n"
        f"    IMGBUILD_DEV_HOME: {dev.home}\n"
        f"    IMGBUILD_DEV_REGISTRY: {dev.registry}\n"
        f"    IMGBUILD_DEV_BASE_IMAGE: {dev.base_image}\n"
    )
    (app / "build-marker.txt").write_text(f"{uuid.uuid4()}\n")
    _git(root, "init", "-q", "-b", "main")
    rendered = subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(app / "imgbuild.yaml"), "codebuild", "render"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (root / "buildspecs" / "pr.yml").is_file()
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "example")
    return _git(root, "rev-parse", "HEAD")


def project_env(root: Path, kind: str, *, app: str = "examples/hello") -> dict[str, str]:
    """The environment variables `apply` would give the CodeBuild project (all PLAINTEXT here);
    `app`: the config's folder in the checkout."""
    from buildkit.codebuild import project
    from buildkit.config import loading as configmod

    config = configmod.resolve(root / app / "imgbuild.yaml")
    spec = next(
        s for s in project.projects(config, project.Account(ACCOUNT, REGION)) if s.kind == kind
    )
    assert spec.params["source"]["buildspec"] == f"buildspecs/{kind}.yml"
    variables = spec.params["environment"]["environmentVariables"]
    assert {v["type"] for v in variables} == {"PLAINTEXT"}
    return {v["name"]: v["value"] for v in variables}


def webhook_env(kind: str, commit: str, build_id: str) -> dict[str, str]:
    """The CODEBUILD_* variables of a webhook build: a PR opened from feature/tidy into main,
    or a push to main."""
    env = {
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}",
        "CODEBUILD_BUILD_NUMBER": "7",
        "CODEBUILD_BUILD_IMAGE": "aws/codebuild/standard:7.0",
        "CODEBUILD_INITIATOR": "GitHub-Hookshot/0a1b2c3",
        "CODEBUILD_SRC_DIR": SRC_DIR,
        "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/hello",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
        "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID": "1234567",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "HOME": "/root",
    }
    if kind == "pr":
        env.update(
            CODEBUILD_SOURCE_VERSION="pr/42",
            CODEBUILD_WEBHOOK_TRIGGER="pr/42",
            CODEBUILD_WEBHOOK_EVENT="PULL_REQUEST_CREATED",
            CODEBUILD_WEBHOOK_HEAD_REF="refs/heads/feature/tidy",
            CODEBUILD_WEBHOOK_BASE_REF="refs/heads/main",
        )
    else:
        env.update(
            CODEBUILD_SOURCE_VERSION=commit,
            CODEBUILD_WEBHOOK_TRIGGER="branch/main",
            CODEBUILD_WEBHOOK_EVENT="PUSH",
            CODEBUILD_WEBHOOK_HEAD_REF="refs/heads/main",
            CODEBUILD_WEBHOOK_PREV_COMMIT="0" * 40,
        )
    return env


def manifest_digest(registry: str, repo: str, tag: str) -> str | None:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": _MANIFEST_TYPES},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _registry(registry: str, method: str, path: str, **kwargs: Any) -> Any:
    request = urllib.request.Request(f"http://{registry}/v2/{path}", method=method, **kwargs)
    return urllib.request.urlopen(request, timeout=60)


def copy_image(registry: str, src_repo: str, dest_repo: str, tag: str) -> None:
    """dest_repo:tag = src_repo:tag inside the registry: blobs mounted, the manifest put as is."""
    with _registry(
        registry, "GET", f"{src_repo}/manifests/{tag}", headers={"Accept": _MANIFEST_TYPES}
    ) as response:
        body, media_type = response.read(), response.headers["Content-Type"]
    manifest = json.loads(body)
    assert "layers" in manifest, f"{src_repo}:{tag} is not a single-platform image"
    for blob in (manifest["config"], *manifest["layers"]):
        query = f"mount={blob['digest']}&from={src_repo}"
        with _registry(registry, "POST", f"{dest_repo}/blobs/uploads/?{query}", data=b"") as done:
            assert done.status == 201, f"could not mount {blob['digest']} into {dest_repo}"
    with _registry(
        registry,
        "PUT",
        f"{dest_repo}/manifests/{tag}",
        data=body,
        headers={"Content-Type": media_type},
    ):
        pass


def seed_chain(root: Path, registry: str) -> None:
    """Give cbtest-ruby/-base the example's images under the same content keys."""
    planned = subprocess.run(
        [
            sys.executable,
            "-m",
            "buildkit",
            "-c",
            str(root / "examples/hello/imgbuild.yaml"),
            "plan",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert planned.returncode == 0, planned.stderr
    for layer in json.loads(planned.stdout)["layers"][:2]:
        tag = layer["image"].rsplit(":", 1)[1]
        dest = f"{NAME}-{layer['name']}"
        if manifest_digest(registry, dest, tag) is None and manifest_digest(
            registry, f"hello-{layer['name']}", tag
        ):
            copy_image(registry, f"hello-{layer['name']}", dest, tag)


@pytest.fixture
def checkout(tmp_path: Path, dev: DevEnv) -> tuple[Path, str]:
    root = tmp_path / "src"
    commit = make_checkout(root, dev)
    seed_chain(root, dev.registry)
    return root, commit


def run_in_container(
    image: str,
    root: Path,
    wheels: Path,
    dev: DevEnv,
    kind: str,
    commit: str,
    *,
    app: str = "examples/hello",
    docker_args: Sequence[str] = (),
) -> BuildResult:
    """`app`: the config's folder in the checkout; `docker_args`: more `docker run` options for
    the build container."""
    name = f"imgbuild-codebuild-{kind}-{uuid.uuid4().hex[:8]}"
    docker(
        "run",
        "-d",
        "--rm",
        "--name",
        name,
        "--network",
        "host",
        *docker_args,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        f"{root}:{SRC_DIR}",
        "-v",
        f"{wheels}:/wheels:ro",
        "-v",
        f"{dev.home / 'ruby'}:{dev.home / 'ruby'}:ro",
        "-v",
        f"{dev.home / 'ruby-build'}:{dev.home / 'ruby-build'}:ro",
        image,
        "sleep",
        "infinity",
    )
    try:
        env = {
            **webhook_env(kind, commit, f"hello-{kind}:{uuid.uuid4()}"),
            **project_env(root, kind, app=app),
        }
        runner = Runner(["docker", "exec", "-i", name], timeout=900, stream=sys.stderr)
        return runner.run(root / "buildspecs" / f"{kind}.yml", env)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False, timeout=60)


def _assert_build_ok(
    result: BuildResult, root: Path, registry: str, *, built: bool = True, name: str = NAME
) -> dict[str, str]:
    assert result.exit_code == 0, result.text()[-6000:]
    assert result.phases == dict.fromkeys(
        ("install", "pre_build", "build", "post_build"), "SUCCEEDED"
    )
    assert "\r" not in result.text()
    assert "\x1b[" not in result.text()
    exported = result.exported
    assert exported["IMGBUILD_RESULT_APP_IMAGE"].startswith(f"{registry}/{name}-app:")
    assert exported["IMGBUILD_RESULT_APP_DIGEST"].startswith("sha256:")
    assert exported["IMGBUILD_RESULT_RUBY_IMAGE"].startswith(f"{registry}/{name}-ruby:")
    reports = root / "imgbuild-reports"
    app = json.loads((reports / "build.json").read_text())["layers"][-1]
    assert (app["name"], app["built"]) == ("app", built)
    assert app["digest"] == exported["IMGBUILD_RESULT_APP_DIGEST"]
    size = reports / "size.xml"
    assert size.is_file()
    assert "<testsuite" in size.read_text()
    lines = (reports / "codebuild.env").read_text().splitlines()
    return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines)


def test_pull_request_build_then_its_merge_to_main(
    runner_image: str, wheelhouse: Path, dev: DevEnv, checkout: tuple[Path, str]
) -> None:
    """The PR build builds and pushes the app without moving `latest`; the push to main of the
    same commit (a fast-forward merge) reuses that image and moves `latest` to it."""
    root, commit = checkout
    latest_before = manifest_digest(dev.registry, f"{NAME}-app", "latest")
    pr = run_in_container(runner_image, root, wheelhouse, dev, "pr", commit)
    context = _assert_build_ok(pr, root, dev.registry)
    assert context["IMGBUILD_TRIGGER"] == "pr/42"
    assert context["IMGBUILD_RELEASE_TAGS"] == "--no-release-tags"
    assert context["IMGBUILD_COMMIT"] == commit
    digest = pr.exported["IMGBUILD_RESULT_APP_DIGEST"]
    assert latest_before != digest
    assert manifest_digest(dev.registry, f"{NAME}-app", "latest") == latest_before
    image_tag = pr.exported["IMGBUILD_RESULT_APP_IMAGE"].rsplit(":", 1)[1]
    assert manifest_digest(dev.registry, f"{NAME}-app", image_tag) == digest

    shutil.rmtree(root / "imgbuild-reports")
    main = run_in_container(runner_image, root, wheelhouse, dev, "main", commit)
    context = _assert_build_ok(main, root, dev.registry, built=False)
    assert context["IMGBUILD_TRIGGER"] == "branch/main"
    assert context["IMGBUILD_RELEASE_TAGS"] == "--release-tags"
    assert main.exported["IMGBUILD_RESULT_APP_DIGEST"] == digest
    assert manifest_digest(dev.registry, f"{NAME}-app", "latest") == digest


def test_main_build_of_a_new_commit_builds_and_moves_release_tags(
    runner_image: str, wheelhouse: Path, dev: DevEnv, checkout: tuple[Path, str]
) -> None:
    root, commit = checkout
    result = run_in_container(runner_image, root, wheelhouse, dev, "main", commit)
    _assert_build_ok(result, root, dev.registry)
    digest = result.exported["IMGBUILD_RESULT_APP_DIGEST"]
    assert manifest_digest(dev.registry, f"{NAME}-app", "latest") == digest
    assert manifest_digest(dev.registry, f"{NAME}-app", "main") == digest
