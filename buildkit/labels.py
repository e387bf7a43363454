"""Image labels imgbuild writes, and the compact encoding of a layer's recorded inputs.

Labels travel on argv (`--label`), and Linux caps one argument at 128 KiB, so the inputs map is
zlib-compressed; when even that is too big (huge source trees) the per-file entries are folded into
per-directory digests, which still lets `plan` say "app/models changed".
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping

KEY = "org.imgbuild.key"
LAYER = "org.imgbuild.layer"
INPUTS = "org.imgbuild.inputs"
PARENT = "org.imgbuild.parent"
MAX_ENCODED = 64 * 1024


def _pack(inputs: Mapping[str, str]) -> str:
    raw = json.dumps(dict(sorted(inputs.items())), separators=(",", ":")).encode()
    return "z1:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def _fold(inputs: Mapping[str, str], depth: int) -> dict[str, str]:
    folded: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for name, value in sorted(inputs.items()):
        if not name.startswith("file:"):
            folded[name] = value
            continue
        parts = name[5:].split("/")
        group = "/".join(parts[:depth]) + ("/" if len(parts) > depth else "")
        groups.setdefault(group, []).append(f"{name}={value}")
    for group, entries in groups.items():
        folded[f"file:{group}"] = (
            "sha256:" + hashlib.sha256("\n".join(entries).encode()).hexdigest()
        )
    return folded


def encode_inputs(inputs: Mapping[str, str]) -> str:
    """Inputs as one label value, under MAX_ENCODED characters."""
    packed = _pack(inputs)
    depth = 3
    while len(packed) > MAX_ENCODED and depth > 0:
        packed = _pack(_fold(inputs, depth))
        depth -= 1
    return packed


def decode_inputs(value: str) -> dict[str, str] | None:
    """The inputs map from a label value, or None when it is not ours or is damaged."""
    if not value.startswith("z1:"):
        return None
    try:
        data = json.loads(zlib.decompress(base64.b64decode(value[3:])))
    except (ValueError, zlib.error):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
