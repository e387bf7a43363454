"""The app's `COPY . <dest>` as a reproducible gzip'd layer tarball, written without a daemon.

For the registry-native path (as ko and jib do): the blob is appended to the base's manifest.
It holds what BuildKit's `COPY . <dest>` puts in the image, found by the walk that computes the
app's content key, so it holds exactly the files whose digests form that key. Unlike BuildKit's,
it is reproducible: entries sorted bytewise, one mtime, owner 0:0 and no user/group names, a
fixed gzip header. The tar is hashed as it is written (diff_id), gzip'd on a worker thread,
hashed again (digest) and written to a temp file that replaces `out` once complete.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat
import struct
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, ParamSpec, TypeVar

from buildkit.errors import InputError
from buildkit.source.contextdirs import sent_dirs
from buildkit.source.dockerignore import IgnoreRules

# The walk that computes the content key, reused (not copied) so the two cannot drift apart.
from buildkit.source.hashing import _Walk

__all__ = ["COMPRESS_LEVEL", "LayerBlob", "write_layer"]

# Measured on 2 cores, a generated tree of 11,000 text files / 42 MB (read from the page cache):
#   level 1: 0.93 s, 13.3 MB    level 6: 2.03 s, 10.9 MB
# Level 6 saves 18% of the bytes for 2.2x the time; level 1 wins while the push is local or
# fast, and the layer is compressed on every source change. Changing it changes every digest.
COMPRESS_LEVEL: Final = 1
# No flags (so no name), mtime 0, XFL 4 for level 1 and OS 255 (unknown), as Go writes them.
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\0\0\0\0" + bytes((4 if COMPRESS_LEVEL == 1 else 0, 255))
_CHUNK: Final = 1 << 20  # bytes handed to the compressor at a time, and read from a file
_MAX_PENDING: Final = 4  # chunks queued for the compressor: bounds memory, keeps it busy
_BLOCK: Final = 512
_REG, _SYMLINK, _DIR, _PAX = b"0", b"2", b"5", b"x"
# O_NONBLOCK: a file swapped for a FIFO since the walk must not hang the open.
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True)
class LayerBlob:
    """A written layer: what a manifest (digest, size) and a config (diff_id) say about it."""

    path: Path  # the gzip'd tar on disk
    digest: str  # "sha256:<hex>" of the compressed bytes: the manifest's layer digest
    size: int  # compressed size in bytes
    diff_id: str  # "sha256:<hex>" of the uncompressed tar: the config's rootfs.diff_ids entry
    entries: int  # tar entries written
    # Regular file sizes + symlink target lengths: how reports.layerfiles counts a layer (what
    # the daemon says it holds once pulled), so the report needs not read the blob back.
    uncompressed: int = 0


@dataclass(frozen=True)
class _Entry:
    name: bytes  # relative to /, no trailing slash: the sort key
    kind: bytes
    path: str  # on disk; '' for a directory made in the image (by the COPY or a WORKDIR)
    by_copy: bool = False  # the COPY's dest or a parent it creates: the COPY's owner and mode


@dataclass(frozen=True)
class _Stamp:
    """What every header shares: owner and mtime, and `--chmod`'s mode when given."""

    uid: int
    gid: int
    mtime: int
    chmod: int | None


def write_layer(
    context: Path,
    rules: IgnoreRules,
    dest: str,
    out: Path,
    *,
    mtime: int,
    owner: tuple[int, int] | None = None,
    chmod: int | None = None,
    extra_dirs: Sequence[str] = (),
    present_dirs: Sequence[str] | None = None,
    durable: bool = True,
) -> LayerBlob:
    """Write `COPY . <dest>` of `context` (minus what `rules` ignore) as a layer blob at `out`.

    `dest` is absolute. `present_dirs`: the directories the image has before the COPY; `dest`
    and its parents not among them get entries as BuildKit's COPY makes them (`owner`, `chmod`
    or 0755); None: all of them are there (the base's directories stay as they are).
    `mtime` (the commit time) is every entry's mtime; `owner` (uid, gid) replaces 0:0;
    `chmod` replaces the permission bits of files and directories, as `COPY --chmod` does.
    `extra_dirs`: absolute directories to add (root, 0755), e.g. a WORKDIR the Dockerfile
    creates; a directory of the context at the same path wins. Hard links become regular files;
    sockets, FIFOs and devices are left out. Raises InputError for a file it cannot read.
    `durable=False`: no fsync, for a scratch blob that is uploaded and deleted (a crash loses
    nothing; the fsync was 8-18 ms of a one-shot native push, issue 17 P2-ONESHOT).
    """
    if not 0 <= mtime < 8**11:
        raise ValueError(f"mtime {mtime} is outside the tar header's range")
    if not context.is_dir():
        raise InputError(f"build context {context} is not a directory; check the app's path")
    made = _made_by_copy(_relative(dest), present_dirs)
    entries = _entries(context, rules, _relative(dest), [*made, *extra_dirs], len(made))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        # The pool exits first: it finishes the queued chunks before the file is closed.
        with (
            os.fdopen(fd, "wb") as fh,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgbuild-gzip") as pool,
        ):
            sink = _GzipSink(fh, pool)
            stamp = _Stamp(*(owner or (0, 0)), mtime, chmod)
            uncompressed = sum(_write_entry(sink, entry, stamp) for entry in entries)
            sink.write(b"\0" * (2 * _BLOCK))  # end of archive
            digest, diff_id = sink.finish()
            fh.flush()
            size = fh.tell()
            if durable:
                os.fsync(fh.fileno())
        Path(tmp).replace(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return LayerBlob(out, digest, size, diff_id, len(entries), uncompressed)


def _relative(path: str) -> str:
    """An absolute image path as a tar name relative to `/` ('' for `/` itself)."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r} is not an absolute path in the image")
    return posixpath.normpath(path).lstrip("/")


def _made_by_copy(dest: str, present_dirs: Sequence[str] | None) -> list[str]:
    """`dest` (relative) and its parents that the image lacks, as absolute paths."""
    if present_dirs is None:
        return []
    present = {_relative(path) for path in present_dirs}
    made, path = [], dest
    while path and path not in present:
        made.append("/" + path)
        path = posixpath.dirname(path)
    return made


def _entries(
    context: Path, rules: IgnoreRules, dest: str, extra_dirs: Sequence[str], by_copy: int = 0
) -> list[_Entry]:
    """Every entry of the layer, sorted bytewise by name (so a directory precedes its contents).

    The directories are those BuildKit sends (source.contextdirs), the ones the key counts."""
    walk = _Walk(os.fspath(context), rules, None, 0)
    walk.collect("")
    prefix = dest + "/" if dest else ""
    entries = []
    for rel, (path, st) in walk.found.items():
        kind = _SYMLINK if stat.S_ISLNK(st.st_mode) else _REG
        entries.append(_Entry(os.fsencode(prefix + rel), kind, path))
    for rel in sent_dirs(walk.found, walk.dirs, rules).all:  # the context root is `dest`
        entries.append(_Entry(os.fsencode(prefix + rel), _DIR, f"{walk.root}/{rel}"))
    names = {entry.name for entry in entries}
    # The first `by_copy` are the COPY's own (they win over a WORKDIR's at the same path).
    for index, name in enumerate(os.fsencode(_relative(path)) for path in extra_dirs):
        if name and name not in names:
            names.add(name)
            entries.append(_Entry(name, _DIR, "", by_copy=index < by_copy))
    entries.sort(key=lambda entry: entry.name)
    return entries


def _write_entry(sink: _GzipSink, entry: _Entry, stamp: _Stamp) -> int:
    """One entry's header, and a file's contents, into the tar stream; returns the bytes it
    adds to the layer's uncompressed size (LayerBlob.uncompressed)."""
    if entry.kind == _SYMLINK:
        link = os.fsencode(_on_source(entry.path, os.readlink, entry.path))
        # Linux ignores a symlink's mode; BuildKit's layers say 0777 too.
        sink.write(_header(entry.name, _SYMLINK, 0o777, stamp, link=link))
        return len(link)
    if entry.kind == _DIR:
        _write_dir(sink, entry, stamp)
        return 0
    return _write_file(sink, entry, stamp)


def _write_dir(sink: _GzipSink, entry: _Entry, stamp: _Stamp) -> None:
    if not entry.path and not entry.by_copy:
        # A WORKDIR's directory: `mkdir -p` as root (nativefile refuses another user).
        sink.write(_header(entry.name + b"/", _DIR, 0o755, _Stamp(0, 0, stamp.mtime, None)))
        return
    if not entry.path:
        mode = 0o755 if stamp.chmod is None else stamp.chmod  # made by the COPY
    elif stamp.chmod is None:
        mode = _on_source(entry.path, os.lstat, entry.path).st_mode
    else:
        mode = stamp.chmod
    sink.write(_header(entry.name + b"/", _DIR, mode, stamp))


def _write_file(sink: _GzipSink, entry: _Entry, stamp: _Stamp) -> int:
    """A regular file's header and contents; returns its size."""
    fd = _on_source(entry.path, os.open, entry.path, _OPEN_FLAGS)
    try:  # size and mode from the open file, so that header and contents agree
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _read_error(entry.path)
        mode = st.st_mode if stamp.chmod is None else stamp.chmod
        sink.write(_header(entry.name, _REG, mode, stamp, size=st.st_size))
        remaining = st.st_size
        while remaining:
            data = _on_source(entry.path, os.read, fd, min(remaining, _CHUNK))
            if not data:
                raise _read_error(entry.path)
            sink.write(data)
            remaining -= len(data)
        sink.write(b"\0" * (-st.st_size % _BLOCK))
    finally:
        os.close(fd)
    return st.st_size


def _on_source(path: str, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`call(*args)` on a file of the context, an OSError as an InputError naming `path`
    (only these calls: failing to write the layer itself, say a full disk, is no input error)."""
    try:
        return call(*args, **kwargs)
    except OSError as exc:
        raise _read_error(path, exc) from exc


def _read_error(path: str, exc: OSError | None = None) -> InputError:
    """A context file that vanished or changed kind since the walk (no `exc`), or is unreadable."""
    if exc is None or isinstance(exc, FileNotFoundError) or exc.errno == errno.ELOOP:
        return InputError(
            f"{path} changed while the app layer was written; run again after the edit"
        )
    why = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
    return InputError(
        f"cannot read {path} ({why}) for the app layer; make it readable (chmod a+r) "
        "or add it to .dockerignore"
    )


def _header(
    name: bytes, kind: bytes, mode: int, stamp: _Stamp, *, size: int = 0, link: bytes = b""
) -> bytes:
    """A PAX tar header: a ustar block, after an extended header when a field overflows.

    PAX, not GNU: the POSIX format, which Go's archive/tar (so BuildKit) writes for long or
    non-ASCII names and large numbers, with no GNU-only `././@LongLink` entries. Not tarfile's
    headers: their bytes changed between Python versions (bpo-18819 blanked the device numbers
    of non-devices), and a layer's digest must not depend on the interpreter.
    """
    records = b""
    if len(name) > 100 or not name.isascii():
        records += _pax_record(b"path", name)
    if len(link) > 100 or not link.isascii():
        records += _pax_record(b"linkpath", link)
    for key, value, width in ((b"uid", stamp.uid, 8), (b"gid", stamp.gid, 8), (b"size", size, 12)):
        if value >= 8 ** (width - 1):
            records += _pax_record(key, b"%d" % value)
    block = _ustar(name, kind, mode, stamp.uid, stamp.gid, size, stamp.mtime, link)
    if not records:
        return block
    padding = b"\0" * (-len(records) % _BLOCK)
    return (
        _ustar(b"././@PaxHeader", _PAX, 0, 0, 0, len(records), 0, b"") + records + padding + block
    )


def _pax_record(key: bytes, value: bytes) -> bytes:
    """`<length> <key>=<value>\\n`, the length counting its own digits."""
    body = b" %s=%s\n" % (key, value)
    length = len(body) + len(str(len(body)))
    length += len(str(length)) - len(str(len(body)))  # one more digit when the sum carries
    return b"%d%s" % (length, body)


def _ustar(
    name: bytes, kind: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, link: bytes
) -> bytes:
    """A 512-byte ustar block as Go writes it (zero device numbers); too wide a number is 0."""

    def num(value: int, width: int) -> bytes:
        return b"%0*o\0" % (width - 1, value if value < 8 ** (width - 1) else 0)

    head = name[:100].ljust(100, b"\0") + num(mode & 0o7777, 8) + num(uid, 8) + num(gid, 8)
    head += num(size, 12) + num(mtime, 12) + b" " * 8 + kind + link[:100].ljust(100, b"\0")
    block = (head + b"ustar\x0000" + b"\0" * 64 + num(0, 8) + num(0, 8)).ljust(_BLOCK, b"\0")
    # The checksum counts its own field as spaces; "%06o\0 " is how Go and GNU tar write it.
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


class _GzipSink:
    """The tar stream's consumer: its sha256 (diff_id), gzip with a fixed header, the gzip's
    sha256 (digest). All but buffering runs in order on one worker thread: zlib, hashlib and
    file writes release the GIL, so compression overlaps the reads and headers of the tar."""

    def __init__(self, fh: BinaryIO, pool: ThreadPoolExecutor) -> None:
        self._fh = fh
        self._pool = pool
        self._buffer = bytearray()
        self._pending: deque[Future[None]] = deque()
        self._tar_sha = hashlib.sha256()
        self._tar_size = 0
        self._crc = 0
        self._gz_sha = hashlib.sha256()
        self._zip = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._emit(_GZIP_HEADER)

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
            self._submit()

    def finish(self) -> tuple[str, str]:
        """Flush everything; (digest, diff_id)."""
        self._submit()
        while self._pending:
            self._pending.popleft().result()
        trailer = struct.pack("<II", self._crc, self._tar_size & 0xFFFFFFFF)
        self._emit(self._zip.flush() + trailer)
        return "sha256:" + self._gz_sha.hexdigest(), "sha256:" + self._tar_sha.hexdigest()

    def _submit(self) -> None:
        if self._buffer:
            chunk, self._buffer = self._buffer, bytearray()  # handed over, not copied
            self._pending.append(self._pool.submit(self._consume, chunk))
        while len(self._pending) > _MAX_PENDING:
            self._pending.popleft().result()  # re-raises a failed write

    def _consume(self, chunk: bytearray) -> None:
        self._tar_sha.update(chunk)
        self._tar_size += len(chunk)
        self._crc = zlib.crc32(chunk, self._crc)
        self._emit(self._zip.compress(chunk))

    def _emit(self, data: bytes) -> None:
        self._gz_sha.update(data)
        self._fh.write(data)
