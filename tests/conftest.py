"""Shared fixtures. Integration tests use the real daemon, BuildKit and the local registry that
`make services` brings up; when those are missing the tests fail (never skip) with what to run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
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
