"""Issue 7's secrets: build credentials never land in layers, history, labels or logs; the default
ignore list keeps secret files out of every layer of the app image."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Project, layers_by_name

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def saved_layers(image: str) -> Iterator[tuple[str, tarfile.TarFile]]:
    """Each layer tar of `docker save image`, opened. The paths come from the archive's
    manifest.json: `<id>/layer.tar` from Docker 20.10, `blobs/sha256/<digest>` (an OCI layout)
    from Docker 25 and newer, whatever their image store."""
    saved = subprocess.run(["docker", "save", image], capture_output=True, check=True, timeout=300)
    with tarfile.open(fileobj=io.BytesIO(saved.stdout)) as outer:
        index = outer.extractfile("manifest.json")
        assert index is not None
        (entry,) = json.loads(index.read())
        assert entry["Layers"], entry
        for name in entry["Layers"]:
            data = outer.extractfile(name)
            assert data is not None
            with tarfile.open(fileobj=io.BytesIO(data.read())) as layer:
                yield name, layer


def test_gem_credentials_reach_bundle_install_only_through_a_secret_mount(project: Project) -> None:
    secret = f"ghp-not-real-{time.time_ns()}"
    nonce = time.time_ns()
    # A fresh BUNDLE_CACHE_KEY makes bundle install really run (secrets are not cache keys).
    section = (
        f"  secrets: [BUNDLE_GITHUB__COM]\n  build_args: {{BUNDLE_CACHE_KEY: 'sec-{nonce}'}}\n"
    )
    project.edit_config("base:\n", f"base:\n{section}")
    result = project.run("app", "--json", extra_env={"BUNDLE_GITHUB__COM": secret})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bundle-env: 1 credential(s) available" in result.stderr
    assert secret not in result.stdout + result.stderr
    layers = layers_by_name(json.loads(result.stdout))
    assert layers["base"]["built"] is True
    for name in ("base", "app"):
        image = layers[name]["image"]
        history = subprocess.run(
            ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
        ).stdout
        inspect = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
        ).stdout
        assert secret not in history
        assert secret not in inspect
        for layer_name, layer in saved_layers(image):
            for member in layer.getmembers():
                if member.isfile():
                    handle = layer.extractfile(member)
                    assert handle is not None
                    assert secret.encode() not in handle.read(), f"{layer_name}:{member.name}"


def test_missing_secret_variable_is_a_one_line_input_error(project: Project) -> None:
    nonce = time.time_ns()
    project.edit_config(
        "base:\n", f"base:\n  secrets: [BUNDLE_NOT_SET_ANYWHERE]\n  build_args: {{N: '{nonce}'}}\n"
    )
    result = project.run("app")
    assert result.returncode == 4, result.stderr
    assert "BUNDLE_NOT_SET_ANYWHERE, not set in the environment" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.engines
def test_default_ignores_keep_secret_files_out_of_every_app_layer(project: Project) -> None:
    root = project.root
    planted = {
        ".env.production": "SECRET=1\n",
        "config/credentials/production.key": "k\n",
        "certs/server.pem": "-----BEGIN PRIVATE KEY-----\n",
        ".git/config": "[core]\n",
        "lib/planted.rb": f"PLANTED = {time.time_ns()}\n",  # a fresh app key
    }
    for path, text in planted.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    image = layers_by_name(project.run_json("app"))["app"]["image"]
    names: set[str] = set()
    for _, layer in saved_layers(image):
        names.update(member.name for member in layer.getmembers())
    assert "app/lib/planted.rb" in names  # the scan sees the app's files
    forbidden = [
        n
        for n in names
        if n.startswith("app/")
        and (
            "/.env" in n
            or n.endswith((".pem", "master.key"))
            or "/.git/" in n
            or n.startswith("app/config/credentials/")
        )
    ]
    assert forbidden == []
