"""A vendored gem rebuilt under the same name and version must be reinstalled, not served from
the gem cache mount with its old compiled extension."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, Project, layers_by_name

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=300
    ).stdout


def native_add(image: str) -> str:
    script = 'require "bundler/setup"; require "tinynative"; print TinyNative.add(1, 2)'
    return docker("run", "--rm", "--entrypoint", "ruby", image, "-e", script)


def test_changed_gem_with_same_version_is_reinstalled(project: Project, tmp_path: Path) -> None:
    nonce = time.time_ns()
    project.edit_config("base:\n", f"base:\n  build_args: {{BUNDLE_CACHE_KEY: 'vendor-{nonce}'}}\n")
    first = layers_by_name(project.run_json("app"))
    assert native_add(first["app"]["image"]) == "3"

    source = tmp_path / "tinynative"
    shutil.copytree(EXAMPLE / "gems-src" / "tinynative", source)
    c_file = next((source / "ext" / "tinynative").glob("*.c"))
    c_file.write_text(
        c_file.read_text().replace("return LONG2NUM(sum);", "return LONG2NUM(sum + 100);")
    )
    assert "sum + 100" in c_file.read_text()
    docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "HOME=/tmp",
        "-v",
        f"{source}:/w",
        "-w",
        "/w",
        first["ruby"]["image"],
        "gem",
        "build",
        "tinynative.gemspec",
    )
    built = next(source.glob("tinynative-*.gem"))
    shutil.copy(built, project.root / "vendor" / "cache" / built.name)

    result = project.run("app", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "changed under the same version: reinstalling it" in result.stderr
    second = layers_by_name(json.loads(result.stdout))
    assert second["base"]["built"] is True
    assert native_add(second["app"]["image"]) == "103"
