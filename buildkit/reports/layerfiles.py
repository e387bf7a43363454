"""What is inside a layer tarball: its uncompressed size and its files, cached by layer digest.

"Uncompressed" is counted the way the Docker daemon's overlay2 store counts a layer it pulled
(moby's `directory.Size` of the unpacked diff): regular file sizes plus symlink target lengths,
hard links once, directories and whiteouts zero. So it is what `docker image inspect .Size` says
on a node that pulled the image (checked byte for byte on the example chain's OS layer). The
machine that built a layer may say a few kB less: it registers its own layers without counting
symlinks. A layer never changes under its digest, so results are cached by diff_id.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from buildkit import cachedir, fsutil, log
from buildkit.engine.registry import RegistryClient
from buildkit.errors import ImgbuildError
from buildkit.reports import tarscan

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_HEX = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


@dataclass(frozen=True)
class LayerFiles:
    """One layer's content: its files (path -> bytes) and what it deletes from the layers below."""

    uncompressed: int
    files: Mapping[str, int]
    deleted: tuple[str, ...] = ()
    opaque: tuple[str, ...] = ()  # directories whose lower content this layer hides


def _clean(name: str) -> str:
    return "/" + name.removeprefix("./").lstrip("/").rstrip("/")


def read_tar(blob: IO[bytes]) -> LayerFiles:
    """Parse a layer blob (gzip or plain tar; the format is sniffed): with the fast header
    scanner (tarscan.py), or with tarfile when the blob uses a feature it does not know."""
    try:
        return _count((m.name, m.type, m.size, m.linkname) for m in tarscan.members(blob))
    except (tarscan.Unsupported, ValueError, zlib.error):
        blob.seek(0)
        return read_tar_with_tarfile(blob)


def read_tar_with_tarfile(blob: IO[bytes]) -> LayerFiles:
    """The reference reader (slow: a TarInfo per member), for what tarscan does not handle."""
    with tarfile.open(fileobj=blob, mode="r:*") as archive:
        return _count((m.name, m.type, m.size, m.linkname) for m in archive)


def _count(members: Iterable[tuple[str, bytes, int, str]]) -> LayerFiles:
    files: dict[str, int] = {}
    deleted: list[str] = []
    opaque: list[str] = []
    total = 0
    for name, kind, size, linkname in members:
        path = _clean(name)
        parent, _, base = path.rpartition("/")
        if base == _OPAQUE:
            opaque.append(parent or "/")
            continue
        if base.startswith(_WHITEOUT):
            deleted.append(f"{parent}/{base.removeprefix(_WHITEOUT)}")
            continue
        if kind in _REGULAR:
            counted = size
        elif kind == tarfile.SYMTYPE:
            counted = len(linkname.encode("utf-8", "surrogateescape"))
        elif kind == tarfile.LNKTYPE:
            counted = 0  # a hard link shares its target's inode: counted once, like the daemon
        else:
            continue
        files[path] = counted
        total += counted
    return LayerFiles(uncompressed=total, files=files, deleted=tuple(deleted), opaque=tuple(opaque))


def merge(layers: Iterable[LayerFiles]) -> dict[str, int]:
    """The file tree that stacking these layers in order produces (whiteouts applied)."""
    tree: dict[str, int] = {}
    for layer in layers:
        for directory in layer.opaque:
            prefix = directory.rstrip("/") + "/"
            for path in [p for p in tree if p.startswith(prefix)]:
                del tree[path]
        for gone in layer.deleted:
            prefix = gone + "/"
            for path in [p for p in tree if p == gone or p.startswith(prefix)]:
                del tree[path]
        tree.update(layer.files)
    return tree


@dataclass(frozen=True)
class FileGrowth:
    path: str
    before: int | None  # None: the file is new
    after: int

    @property
    def growth(self) -> int:
        return self.after - (self.before or 0)

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "before_bytes": self.before, "after_bytes": self.after}


def grown_files(
    before: Mapping[str, int], after: Mapping[str, int], limit: int = 5
) -> list[FileGrowth]:
    """The files added or grown from `before` to `after`, largest growth first."""
    grown = [
        FileGrowth(path, before.get(path), size)
        for path, size in after.items()
        if size > before.get(path, -1) and size > 0
    ]
    grown.sort(key=lambda item: (-item.growth, item.path))
    return grown[:limit]


class LayerStore:
    """Layer facts by digest: uncompressed sizes (small JSON map) and file lists (one file each)."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._sizes_path = cachedir.layer_sizes(cache_dir)
        loaded = fsutil.read_json(self._sizes_path)
        self._sizes: dict[str, int] = (
            {str(k): int(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        )
        self._dirty = False

    def size(self, diff_id: str) -> int | None:
        return self._sizes.get(diff_id)

    def remember(self, diff_id: str, size: int) -> None:
        if self._sizes.get(diff_id) != size:
            self._sizes[diff_id] = size
            self._dirty = True

    def seed(self, layers: Iterable[tuple[str | None, int | None]]) -> None:
        """Sizes measured elsewhere (the baseline file, the history): (diff_id, uncompressed)."""
        for diff_id, size in layers:
            if diff_id and size is not None and diff_id not in self._sizes:
                self.remember(diff_id, size)

    def save(self) -> None:
        if self._dirty:
            fsutil.atomic_write_json(self._sizes_path, self._sizes)
            self._dirty = False

    def _files_path(self, diff_id: str) -> Path | None:
        match = _HEX.match(diff_id)
        return cachedir.layer_files(self._cache_dir, match[1]) if match else None

    def files(
        self, client: RegistryClient, repo: str, digest: str, diff_id: str
    ) -> LayerFiles | None:
        """The layer's files, from the cache or by reading its blob; None when unreadable."""
        path = self._files_path(diff_id)
        cached = fsutil.read_json(path) if path else None
        if isinstance(cached, dict) and isinstance(cached.get("files"), dict):
            return LayerFiles(
                uncompressed=int(cached["uncompressed"]),
                files={str(k): int(v) for k, v in cached["files"].items()},
                deleted=tuple(cached.get("deleted", ())),
                opaque=tuple(cached.get("opaque", ())),
            )
        try:
            with tempfile.TemporaryFile(prefix="imgbuild-layer-") as blob:
                client.download_blob(repo, digest, blob)  # streamed: layers can be large
                blob.seek(0)
                layer = read_tar(blob)
        except (ImgbuildError, tarfile.TarError, OSError, EOFError) as exc:
            message = exc.message if isinstance(exc, ImgbuildError) else str(exc)
            log.warn(f"cannot read layer {digest[:19]} of {repo}: {message}")
            return None
        self.remember(diff_id, layer.uncompressed)
        if path is not None:
            fsutil.atomic_write_json(
                path,
                {
                    "uncompressed": layer.uncompressed,
                    "files": dict(layer.files),
                    "deleted": list(layer.deleted),
                    "opaque": list(layer.opaque),
                },
            )
        return layer


def tree_of(
    store: LayerStore, client: RegistryClient, repo: str, layers: Sequence[tuple[str, str]]
) -> dict[str, int] | None:
    """Merged file tree of (digest, diff_id) layers of repo; None if any layer is unreadable."""
    parts = []
    for digest, diff_id in layers:
        part = store.files(client, repo, digest, diff_id)
        if part is None:
            return None
        parts.append(part)
    return merge(parts)
