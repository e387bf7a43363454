"""Shared fixtures. Integration tests use the real daemon, BuildKit and the local registry that
`make services` brings up; when those are missing the tests fail (never skip) with what to run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.engines import Engine, FreshDaemon, start_fresh_daemon, start_fresh_engine26

REPO = Path(__file__).resolve().parent.parent
# Every `imgbuild` the suite starts runs in its own process unless a test starts a server of its
# own (tests/server/test_server.py): a developer's running server must not serve the suite's
# commands.
os.environ["IMGBUILD_SERVER"] = "off"
# Tests send SIGINT to the processes they start (Ctrl-C handling). A suite started in the
# background by a non-interactive shell inherits SIGINT ignored, and so would every child
# (imgbuild keeps an ignored SIGINT ignored, as nohup users expect): a Python-level handler is
# not inherited across exec, so the children get the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
    name: str = "hello"  # the config's `name:`, the prefix of its repositories

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
def project(tmp_path: Path, dev: DevEnv, engine: Engine) -> Project:
    root = tmp_path / "hello"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("gems-src"))
    project = Project(root=root, cache_dir=tmp_path / "cache", dev=dev)
    if engine.name != "system":
        # Repositories of its own: the same keys would otherwise find the system engine's images
        # in the registry, and engine 26 would never build or push (an index, attestations).
        project.edit_config("name: hello\n", "name: hello26\n")
        project.name = "hello26"
    return project


def layers_by_name(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in document["layers"]}


# -- engines: the system one (Debian 12: Docker 20.10) and Docker 26 with the containerd store ----
# Tests marked `engines` run once per engine; every other test runs on the system engine.
ENGINES = ("system", "engine26")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("engines"):
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest, dev: DevEnv, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The engine this test runs on; DOCKER_HOST points every docker CLI, SDK and imgbuild run of
    the test at it (imgbuild needs nothing else to use another engine)."""
    name = getattr(request, "param", "system")
    if name == "system":
        return Engine(name="system", host=os.environ.get("DOCKER_HOST", ""))
    host = _read_dev_env().get("IMGBUILD_DEV_ENGINE26_HOST", "")
    if not host:
        pytest.fail("engine 26 is not set up (IMGBUILD_DEV_ENGINE26=off?); run `make services`")
    monkeypatch.setenv("DOCKER_HOST", host)
    probe = subprocess.run(["docker", "version"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.fail(f"engine 26 does not answer on {host}; run `make services`")
    return Engine(name="engine26", host=host)


@pytest.fixture
def fresh_daemon(request: pytest.FixtureRequest, engine: Engine) -> FreshDaemon:
    """An empty daemon of the same kind as the test's engine (a wiped machine, a new CI host)."""
    fixture = "_fresh_system_daemon" if engine.name == "system" else "_fresh_engine26"
    daemon: FreshDaemon = request.getfixturevalue(fixture)
    return daemon


@pytest.fixture(scope="session")
def _fresh_system_daemon(
    tmp_path_factory: pytest.TempPathFactory, dev: DevEnv
) -> Iterator[FreshDaemon]:
    with start_fresh_daemon(tmp_path_factory.mktemp("dockerd"), dockerd=["dockerd"]) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def _fresh_engine26(tmp_path_factory: pytest.TempPathFactory, dev: DevEnv) -> Iterator[FreshDaemon]:
    root = tmp_path_factory.mktemp("dockerd26")
    with start_fresh_engine26(root, dev.home / "engine26" / "root") as daemon:
        yield daemon
