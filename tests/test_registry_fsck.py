"""dev/registry_fsck.py: a dev registry storage with a lost layer link is repaired before start."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

FSCK = Path(__file__).resolve().parent.parent / "dev" / "registry_fsck.py"


def _blob(v2: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = v2 / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _link(repo: Path, kind: str, digest: str) -> Path:
    link = repo / kind / "sha256" / digest[7:] / "link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_text(digest)
    return link


def _store(v2: Path, repo: Path, tag: str, layer: str, config: str) -> str:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": config, "size": 1},
        "layers": [{"digest": layer, "size": 1}],
    }
    digest = _blob(v2, json.dumps(manifest).encode())
    _link(repo, "_manifests/revisions", digest)
    current = repo / "_manifests" / "tags" / tag / "current" / "link"
    current.parent.mkdir(parents=True, exist_ok=True)
    current.write_text(digest)
    return digest


def _fsck(root: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(FSCK), str(root)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_lost_link_is_restored_and_a_manifest_without_its_blob_is_untagged(tmp_path: Path) -> None:
    v2 = tmp_path / "docker" / "registry" / "v2"
    repo = v2 / "repositories" / "team" / "app-ruby"
    config, layer = _blob(v2, b"config"), _blob(v2, b"layer")
    _link(repo, "_layers", config)  # the layer's link is the one lost
    _store(v2, repo, "good", layer, config)
    gone = "sha256:" + hashlib.sha256(b"never stored").hexdigest()
    _store(v2, repo, "broken", gone, config)

    assert _fsck(tmp_path).strip().endswith("relinked 1 blobs, untagged 1 manifests")
    assert (repo / "_layers" / "sha256" / layer[7:] / "link").read_text() == layer
    assert (repo / "_manifests" / "tags" / "good" / "current" / "link").exists()
    assert not (repo / "_manifests" / "tags" / "broken").exists()
    assert _fsck(tmp_path) == ""  # a healthy storage is left alone, silently


def test_missing_storage_is_not_an_error(tmp_path: Path) -> None:
    assert _fsck(tmp_path / "new") == ""
