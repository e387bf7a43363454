"""Image labels imgbuild writes, and the compact encoding of a layer's recorded inputs.

The app image records its process types (`app.processes`, config.deploy) as one label each,
`org.imgbuild.process.<name>` = the command, so whoever holds the digest can read how to run
each process from the image itself. The app's key covers them (chain.layers).

The inputs map is not a label any more (it cost every app config ~36 kB on a large app): it is
stored beside the image as an artifact (chain.inputsref), in this encoding: zlib-compressed, and
when even that is too big (huge source trees) the per-file entries are folded into
per-directory digests, which still lets `plan` say "app/models changed".
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence

KEY = "org.imgbuild.key"
LAYER = "org.imgbuild.layer"
PARENT = "org.imgbuild.parent"
PROCESS_PREFIX = "org.imgbuild.process."
MAX_ENCODED = 64 * 1024


def process_labels(processes: Sequence[tuple[str, str]]) -> dict[str, str]:
    """One label per process type: `org.imgbuild.process.web` = its command."""
    return {f"{PROCESS_PREFIX}{name}": command for name, command in processes}


def processes_from_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The process types an image's labels record (name -> command), sorted by name."""
    return {
        key.removeprefix(PROCESS_PREFIX): value
        for key, value in sorted(labels.items())
        if key.startswith(PROCESS_PREFIX)
    }


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
    """Inputs as one label value, under MAX_ENCODED characters: the whole map if it fits, else
    folded per directory three, two, then one level deep (the last one whatever its size)."""
    depths = (0, 3, 2, 1)  # 0: not folded
    for depth in depths:
        last = depth == depths[-1]
        candidate = _fold(inputs, depth) if depth else inputs
        if not last and not _may_fit(candidate):
            continue  # its pack would be too big anyway
        packed = _pack(candidate)
        if last or len(packed) <= MAX_ENCODED:
            return packed
    raise AssertionError("unreachable: the last candidate is always returned")


def _may_fit(inputs: Mapping[str, str]) -> bool:
    """Whether a packed map could stay under MAX_ENCODED: each distinct sha256 (of real content,
    so random-looking) is 32 bytes no compressor can shrink, 43 characters once in base64. A
    10k-file tree is far past that; compressing its 1 MB map at level 9 only to throw it away
    cost a build ~0.1 s."""
    distinct = {value for value in inputs.values() if value.startswith("sha256:")}
    return len(distinct) * 32 * 4 / 3 <= MAX_ENCODED


def decode_inputs(value: str) -> dict[str, str] | None:
    """The inputs map from a label value, or None when it is not ours or is damaged."""
    if not value.startswith("z1:"):
        return None
    try:
        data = json.loads(zlib.decompress(base64.b64decode(value[3:])))
    except (ValueError, zlib.error):
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None
