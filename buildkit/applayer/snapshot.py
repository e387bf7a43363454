"""The app's source snapshot: a source edit copies and pushes the changed files, not the tree.

Even with the bulk in layers of its own (bulk.py), `COPY . /app/` re-copies, re-compresses and
re-pushes the whole source on every edit: 37 MB / 9,754 files on the large benchmark app, ~10 s
of the engine's time for a one-line change. With `app.delta` (on by default) the app image is
built in two steps:

* the **snapshot** `<app repository>:src-<key>`: the app Dockerfile up to and including its
  `COPY . <dest>` (the same FROM, metadata and COPY), built from the whole context. Local only:
  it is never pushed, and its layers reach the registry inside the app image;
* the **app image**: the app Dockerfile, FROM the snapshot, with a context of only the files
  that changed since the snapshot, so its `COPY . <dest>` writes them over the snapshot's.

The final file tree is the same as a one-step build's (same files, modes, owners), under the
same content key; only the layering differs, and a deploy pulls the small delta layer. A new
snapshot is taken (the whole source copied once more) when a file was deleted or changed kind
since the last one (COPY cannot delete), when the changed files outgrow
`max(MIN_DELTA_BYTES, snapshot bytes * DELTA_SHARE)`, when the parent or the Dockerfile's
prefix changed, or when the daemon lost the snapshot. Each app image sits on one snapshot plus
one delta layer: deltas never stack.

Only a Dockerfile whose single context reference is that one COPY qualifies (one FROM on
`${BASE_IMAGE}`, only metadata instructions before the COPY, no other COPY/ADD/bind mount from
the context): anything else builds in one step, as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit.applayer import bulk as bulkmod
from buildkit.applayer import dockerfile
from buildkit.cachedir import snapshot_record
from buildkit.fsutil import atomic_write_json, read_json
from buildkit.source.hashing import combine
from buildkit.source.keys import KEY_LENGTH, compute_key

TAG_PREFIX = "src-"
DELTA_SHARE = 0.25  # a delta may grow to a quarter of the snapshot's bytes
MIN_DELTA_BYTES = 1 << 20  # ...or 1 MiB on a small app, whichever is more
_RECORD_VERSION = 1

# Instructions that only set image metadata: harmless to apply again on top of the snapshot.
_METADATA = {"ARG", "ENV", "LABEL", "WORKDIR", "USER", "SHELL", "EXPOSE", "STOPSIGNAL"}
_FROM_BASE = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?\$\{?BASE_IMAGE\}?(?:\s+AS\s+\S+)?\s*$", re.IGNORECASE
)
_BIND_FROM_CONTEXT = re.compile(r"--mount=(?![^\s]*\bfrom=)[^\s]*\btype=bind\b", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class DeltaSpec:
    """How the app layer may be split into a snapshot and a delta (planned, not yet decided)."""

    repository: str
    prefix: str  # the app Dockerfile up to and including its context COPY
    frame: str  # digest of everything but the files that a snapshot depends on
    tree: Mapping[str, str]  # the app's kept files: relpath -> digest entry
    bulk: tuple[str, ...] = ()  # paths the bulk image holds, not copied by the app layer

    @functools.cached_property
    def files(self) -> Mapping[str, str]:
        """The files the app layer copies. Filtered only when a build needs them: on a 10k-file
        tree this is ~14 ms that a no-op run must not pay."""
        return {rel: d for rel, d in self.tree.items() if not bulkmod.under(rel, self.bulk)}

    def snapshot_image(self) -> str:
        key = compute_key("src", None, {"frame": self.frame, "files": combine(self.files)})
        return f"{self.repository}:{TAG_PREFIX}{key[:KEY_LENGTH]}"


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """A snapshot this machine built: its image and the files it holds."""

    image: str
    frame: str
    files: Mapping[str, str]
    size: int  # bytes of the files (their lstat sizes)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Build on `snapshot` (made now when `fresh`) with the `changed` files as the context."""

    snapshot: Snapshot
    changed: tuple[str, ...]
    fresh: bool
    why: str

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.snapshot.image,
            "taken": self.fresh,
            "changed_files": len(self.changed),
            "why": self.why,
        }


def snapshot_prefix(dockerfile_text: str) -> str | None:
    """The Dockerfile up to its context COPY, when the snapshot split is safe for it."""
    if dockerfile.context_copy(dockerfile_text) is None:
        return None
    lines = dockerfile_text.splitlines(keepends=True)
    froms, end = 0, 0
    for stop, instruction in dockerfile.instructions(lines):
        word = instruction.split(None, 1)[0].upper()
        froms += word == "FROM"
        if end == 0 and word == "COPY" and dockerfile.context_copy(instruction) is not None:
            end = stop
        elif _unsafe(word, instruction, before_copy=end == 0):
            return None
    return "".join(lines[:end]) if froms == 1 and end else None


def _unsafe(word: str, instruction: str, *, before_copy: bool) -> bool:
    """An instruction the split cannot keep: another FROM or context read, or (before the
    COPY) one that would run again on top of the snapshot."""
    if word == "FROM":
        return not _FROM_BASE.match(instruction)
    if word in ("COPY", "ADD"):
        return "--from=" not in instruction.lower()
    if word == "RUN" and _BIND_FROM_CONTEXT.search(instruction):
        return True
    return before_copy and word not in _METADATA


def frame_digest(prefix: str, parent_image: str, build_args: Mapping[str, str]) -> str:
    """What a snapshot depends on besides the files: its Dockerfile prefix, its FROM image and
    the build args the prefix may read."""
    args = "".join(f"{k}\0{v}\0" for k, v in sorted(build_args.items()) if k != "BASE_IMAGE")
    payload = f"{prefix}\0{parent_image}\0{args}".encode()
    return hashlib.sha256(payload).hexdigest()


def decide(spec: DeltaSpec, previous: Snapshot | None, root: Path) -> Decision:
    """Reuse the last snapshot when it is still a good base for the current files."""
    if previous is None or previous.frame != spec.frame:
        why = "no snapshot yet" if previous is None else "its parent or Dockerfile changed"
        return _fresh(spec, root, why)
    changed, replaced = _changes(previous.files, spec.files)
    if replaced:
        return _fresh(spec, root, f"{replaced[0]} was deleted or changed kind")
    delta = _size(root, changed)
    limit = max(MIN_DELTA_BYTES, int(previous.size * DELTA_SHARE))
    if delta > limit:
        return _fresh(spec, root, f"{len(changed)} changed files, {delta} bytes (> {limit})")
    why = f"{len(changed)} changed file(s) since the snapshot"
    return Decision(snapshot=previous, changed=tuple(changed), fresh=False, why=why)


def _fresh(spec: DeltaSpec, root: Path, why: str) -> Decision:
    snapshot = Snapshot(
        image=spec.snapshot_image(),
        frame=spec.frame,
        files=dict(spec.files),
        size=_size(root, list(spec.files)),
    )
    return Decision(snapshot=snapshot, changed=(), fresh=True, why=why)


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(new or edited files, files deleted or turned into another kind since the snapshot)."""
    replaced = [rel for rel in old if rel not in new or _kind(old[rel]) != _kind(new[rel])]
    changed = [rel for rel, digest in new.items() if old.get(rel) != digest]
    return sorted(changed), sorted(replaced)


def _kind(entry: str) -> str:
    return "link" if entry.startswith("link:") else "file"


def _size(root: Path, rels: list[str]) -> int:
    total = 0
    for rel in rels:
        with contextlib.suppress(OSError):  # gone since the walk: staging will say so
            total += os.lstat(root / rel).st_size
    return total


# ---- the record of the last snapshot, per app repository --------------------------------------


def load(cache_dir: Path, repository: str) -> Snapshot | None:
    data = read_json(snapshot_record(cache_dir, repository))
    if not isinstance(data, dict) or data.get("version") != _RECORD_VERSION:
        return None
    files = data.get("files")
    if not isinstance(files, dict) or not isinstance(data.get("size"), int):
        return None
    return Snapshot(
        image=str(data.get("image", "")),
        frame=str(data.get("frame", "")),
        files={str(k): str(v) for k, v in files.items()},
        size=int(data["size"]),
    )


def save(cache_dir: Path, repository: str, snapshot: Snapshot) -> None:
    record = {
        "version": _RECORD_VERSION,
        "image": snapshot.image,
        "frame": snapshot.frame,
        "size": snapshot.size,
        "files": dict(snapshot.files),
    }
    atomic_write_json(snapshot_record(cache_dir, repository), record)
