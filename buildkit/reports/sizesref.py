"""The uncompressed sizes of an image's layers, beside it in the registry.

A layer's uncompressed size is only known by reading its blob (layerfiles.py), which a machine
does once and caches. A CI machine starts empty every time: without this, the report after a
one-file push downloads the ruby and base layers (~100 MB on the example) to say how large they
are, which costs more than the push. The first machine that measures an image stores the
sizes as a small artifact tagged `sha256-<manifest hex>.sizes` (the tag scheme cosign uses for
`.sig`: derived from the image's digest, so a moving tag never serves another image's sizes);
the next one reads a few hundred bytes instead.

The payload is trusted only as far as it goes: sizes keyed by diff_id, which the image's own
config names, so a stale or foreign artifact can only leave layers unmeasured, never mislabel one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from buildkit import log
from buildkit.engine import artifacts
from buildkit.engine.registry import RegistryClient
from buildkit.errors import RegistryError

ARTIFACT_TYPE = "application/vnd.imgbuild.layer-sizes.v1"
PAYLOAD_TYPE = "application/vnd.imgbuild.layer-sizes.v1+json"
SUFFIX = ".sizes"


def tag_for(image_digest: str) -> str | None:
    """`sha256-<hex>.sizes`, or None for a digest that is not a sha256 one."""
    algorithm, _, hex_part = image_digest.partition(":")
    if algorithm != "sha256" or len(hex_part) != 64:
        return None
    return f"sha256-{hex_part}{SUFFIX}"


def load(client: RegistryClient, repo: str, image_digest: str) -> dict[str, int]:
    """The sizes stored beside repo@image_digest: {diff_id: bytes}; {} when there are none."""
    tag = tag_for(image_digest)
    payload = artifacts.get(client, repo, tag, ARTIFACT_TYPE) if tag else None
    if payload is None:
        return {}
    try:
        data = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}


def store(client: RegistryClient, repo: str, image_digest: str, sizes: Mapping[str, int]) -> None:
    """Store the sizes beside the image; a refusal only costs the next machine a download."""
    tag = tag_for(image_digest)
    if tag is None or not sizes:
        return
    payload = json.dumps(dict(sorted(sizes.items())), separators=(",", ":")).encode()
    try:
        artifacts.put(client, repo, tag, ARTIFACT_TYPE, PAYLOAD_TYPE, payload)
    except RegistryError as exc:
        log.warn(f"{repo}@{image_digest[:19]}: its layer sizes were not stored beside it ({exc})")
