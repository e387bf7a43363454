"""Repair the dev registry's storage before the registry starts (dev/services.sh, section 5).

The dev registry lives for weeks under the dev home and CI reuses it. We found it serving a
manifest of hello26-ruby whose first layer was not linked into that repository (the blob itself
was in the store): every pull of it failed with "blob unknown", so every later run that reused the
image failed although nothing in imgbuild or the suite was wrong. The registry then kept an
in-memory blob-descriptor cache (services.sh no longer configures one): a link lost behind its back
(an unclean stop, a storage directory moved while it ran) was still answered as present, so the
manifest was accepted.

So, with the registry stopped: a layer or config a stored manifest references but its repository
does not link is linked again when the blob is in the store; a manifest whose blob is gone from
the store is unreachable, so its tags are removed (the next run rebuilds and pushes it). Prints one
line when it changed anything. Usage: python3 dev/registry_fsck.py <registry rootdirectory>
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


def blob_path(v2: Path, digest: str) -> Path:
    hex_ = digest.removeprefix("sha256:")
    return v2 / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


def referenced(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(blobs the manifest needs linked, child manifests it needs stored)."""
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        children = manifest.get("manifests") or []
        return [], [str(c["digest"]) for c in children if isinstance(c, dict)]
    layers = manifest.get("layers") or []
    blobs = [x for x in layers if isinstance(x, dict) and not x.get("urls")]  # urls: foreign
    config = manifest.get("config")
    digests = [str(b["digest"]) for b in blobs]
    if isinstance(config, dict):
        digests.append(str(config["digest"]))
    return digests, []


def repair_repository(v2: Path, repo: Path) -> tuple[int, int]:
    """(links restored, tags removed) in one repository."""
    revisions = repo / "_manifests" / "revisions" / "sha256"
    layers = repo / "_layers" / "sha256"
    stored = {p.name for p in revisions.iterdir()} if revisions.is_dir() else set()
    relinked, broken = 0, set()
    for hex_ in sorted(stored):
        try:
            manifest = json.loads(blob_path(v2, hex_).read_bytes())
        except (OSError, ValueError):
            broken.add(hex_)
            continue
        blobs, children = referenced(manifest)
        if any(c.removeprefix("sha256:") not in stored for c in children):
            broken.add(hex_)
        for digest in blobs:
            link = layers / digest.removeprefix("sha256:") / "link"
            if link.exists():
                continue
            if not blob_path(v2, digest).exists():
                broken.add(hex_)
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.write_text(digest)
            relinked += 1
    return relinked, _untag(repo, broken)


def _untag(repo: Path, broken: set[str]) -> int:
    removed = 0
    tags = repo / "_manifests" / "tags"
    for current in tags.glob("*/current/link") if broken else ():
        if current.read_text().strip().removeprefix("sha256:") in broken:
            shutil.rmtree(current.parent.parent)  # the tag's directory: `tags/list` lists those
            removed += 1
    return removed


def main(root: str) -> int:
    v2 = Path(root) / "docker" / "registry" / "v2"
    repositories = v2 / "repositories"
    if not repositories.is_dir():
        return 0
    relinked = untagged = 0
    for layers in sorted(repositories.glob("**/_layers")):
        links, tags = repair_repository(v2, layers.parent)
        relinked, untagged = relinked + links, untagged + tags
    if relinked or untagged:
        print(f"registry storage {root}: relinked {relinked} blobs, untagged {untagged} manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
