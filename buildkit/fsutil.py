"""Atomic file writes: a reader (or a run killed half-way) sees the old file or the new one."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write text to path via a temp file in the same directory and os.replace. `mode`: the
    file's permissions (a user's file keeps its own); else mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or unreadable (a cache must never crash us)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def safe_name(text: str) -> str:
    """A file name for a repository, project or URL: runs of other characters become `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
