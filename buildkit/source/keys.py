"""Content keys: a digest of a parent key and named inputs; images are tagged with its prefix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

KEY_LENGTH = 12  # hex digits of the key in an image tag


def compute_key(layer: str, parent_key: str | None, inputs: Mapping[str, str]) -> str:
    canonical = json.dumps(
        {"layer": layer, "parent": parent_key, "inputs": dict(sorted(inputs.items()))},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
