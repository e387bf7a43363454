"""What this machine last saw for each layer: its key and inputs, so `plan` can say why.

One small JSON file per layer image under the cache dir, written atomically. It is a cache: losing
it only makes the reasons vaguer ("no earlier build recorded"), never the decisions wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit.cachedir import state_record
from buildkit.fsutil import atomic_write_text, read_json

_HEAD = 4096  # key and image are written first: enough to tell an unchanged record


@dataclass(frozen=True)
class LayerRecord:
    key: str
    image: str
    inputs: Mapping[str, str]


def exists(cache_dir: Path, repository: str) -> bool:
    """Whether this machine recorded the layer before (without reading the record)."""
    return state_record(cache_dir, repository).is_file()


def load(cache_dir: Path, repository: str) -> LayerRecord | None:
    data = read_json(state_record(cache_dir, repository))
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict):
        return None
    return LayerRecord(
        key=str(data.get("key", "")),
        image=str(data.get("image", "")),
        inputs={str(k): str(v) for k, v in data["inputs"].items()},
    )


def save(cache_dir: Path, repository: str, record: LayerRecord) -> None:
    """Write the record, unless the file already holds this key and image: the key is a digest
    of the inputs, so they are the same too (a 10k-file app's record is ~1 MB to rewrite)."""
    path = state_record(cache_dir, repository)
    head = {"key": record.key, "image": record.image}
    if _starts_with(path, json.dumps(head, indent=2)[:-2]):  # up to the image's closing quote
        return
    atomic_write_text(path, json.dumps({**head, "inputs": dict(record.inputs)}, indent=2) + "\n")


def _starts_with(path: Path, prefix: str) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(_HEAD).startswith(prefix.encode())
    except OSError:
        return False
