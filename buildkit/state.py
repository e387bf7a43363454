"""What this machine last saw for each layer: its key and inputs, so `plan` can say why.

One small JSON file per layer image under the cache dir, written atomically. It is a cache: losing
it only makes the reasons vaguer ("no earlier build recorded"), never the decisions wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit.fsutil import atomic_write_json, read_json


@dataclass(frozen=True)
class LayerRecord:
    key: str
    image: str
    inputs: Mapping[str, str]


def _path(cache_dir: Path, repository: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", repository)
    return cache_dir / "state" / f"{safe}.json"


def load(cache_dir: Path, repository: str) -> LayerRecord | None:
    data = read_json(_path(cache_dir, repository))
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict):
        return None
    return LayerRecord(
        key=str(data.get("key", "")),
        image=str(data.get("image", "")),
        inputs={str(k): str(v) for k, v in data["inputs"].items()},
    )


def save(cache_dir: Path, repository: str, record: LayerRecord) -> None:
    atomic_write_json(
        _path(cache_dir, repository),
        {"key": record.key, "image": record.image, "inputs": dict(record.inputs)},
    )
