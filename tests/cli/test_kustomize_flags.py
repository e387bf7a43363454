"""`--kustomize DIR` through the real `imgbuild` entry, before anything runs: refused without
`--push` or on another layer (exit 3), a directory without a kustomization or a file imgbuild
cannot edit refused (exit 4) before the daemon or the registry is asked anything. Needs no
daemon: DOCKER_HOST and the registry point nowhere, so a run that went further would fail with
another exit code (5 or 8)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli_process import run_imgbuild

CONFIG = 'name: shop\nregistry: 127.0.0.1:9\nruby:\n  version: "3.3.8"\n'


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`imgbuild ARGS` on an app in tmp_path/app (overlays beside it, outside its source)."""
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    config = app / "imgbuild.yaml"
    config.write_text(CONFIG)
    (app / "Gemfile").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGBUILD_")}
    env.update(
        {
            "IMGBUILD_SERVER": "off",
            "IMGBUILD_CACHE_DIR": str(tmp_path / "cache"),
            "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        }
    )
    return run_imgbuild(config, *args, env=env)


def assert_refused(result: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert result.returncode == code, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("imgbuild: error: ")
    assert needle in result.stderr
    assert result.stdout == ""


def test_without_push_it_is_refused(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    result = run(tmp_path, "app", "--kustomize", str(tmp_path / "k"))
    assert_refused(result, 3, "--kustomize writes the pushed app image's digest")
    assert "add --push" in result.stderr


@pytest.mark.parametrize("layer", ["ruby", "base"])
def test_on_another_layer_it_is_refused(tmp_path: Path, layer: str) -> None:
    result = run(tmp_path, layer, "--push", "--kustomize", str(tmp_path))
    assert_refused(result, 3, f"use it with `imgbuild app --push`, not {layer}")


def test_a_missing_directory_is_refused_before_anything_runs(tmp_path: Path) -> None:
    result = run(tmp_path, "app", "--push", "--kustomize", str(tmp_path / "deploy" / "prod"))
    assert_refused(result, 4, f"--kustomize {tmp_path}/deploy/prod does not exist")
    assert not (tmp_path / "cache").exists()


def test_a_directory_without_a_kustomization_is_refused(tmp_path: Path) -> None:
    (tmp_path / "prod").mkdir()
    result = run(tmp_path, "app", "--push", "--kustomize", str(tmp_path / "prod"))
    assert_refused(result, 4, "has no kustomization.yaml, kustomization.yml, Kustomization")


def test_a_kustomization_it_cannot_edit_is_refused_and_left_alone(tmp_path: Path) -> None:
    text = "resources: [a.yaml]\nimages: shop-app\n"
    (tmp_path / "prod").mkdir()
    (tmp_path / "prod" / "kustomization.yaml").write_text(text)
    result = run(tmp_path, "app", "--push", "--kustomize", str(tmp_path / "prod"))
    assert_refused(result, 4, "kustomization.yaml:2: images must be a list of entries")
    assert (tmp_path / "prod" / "kustomization.yaml").read_text() == text
    assert not (tmp_path / "cache").exists()


def test_a_kustomization_in_the_apps_source_is_refused(tmp_path: Path) -> None:
    overlay = tmp_path / "app" / "deploy" / "production"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    result = run(tmp_path, "app", "--push", "--kustomize", str(overlay))
    assert_refused(result, 4, "is in the app's source, so each pinned digest would change")
    assert f"add /deploy to {tmp_path / 'app' / '.dockerignore'}" in result.stderr
