"""Which directories of a build context changed since a warm walk: inotify, in `imgbuild server`.

A warm walk must `lstat` every file to see an edit (10k files: ~45 ms of syscalls on the
benchmark VM, most of a warm hash). The server watches the directories its workers walked and
numbers every event; a worker, forked after the server read all pending events, gets a `Feed`:
the directories watched and the ones that changed after a given sequence number. A walk then
trusts a directory's cached listing and file entries without a single stat when the directory
was watched before the cached walk and has not changed since.

Conservative by construction: a queue overflow, a directory moved or deleted, or a watch the
kernel dropped forgets the whole root (the next walk stats everything and the root is watched
again); changes made through mmap or another mount of the same files are not seen by inotify,
which is why only `imgbuild server` uses this and `IMGBUILD_SERVER=off` never does.

Only the server imports ctypes (`Inotify`); a worker gets the watcher's word as a
`source.treewatch.TreeWatch` (feeds + `ask_server`), installed just before the fork.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from buildkit.source.treewatch import Feed

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
)  # fmt: skip
# The directory itself went away or moved: every path under it may now mean something else.
_LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
MAX_DIRS_PER_ROOT = 50_000  # beyond this a root is not watched (the stat walk still works)


def ask_server(socket_path: str, root: str, reldirs: list[str]) -> None:
    """A worker's `TreeWatch.ask`: ask its server to watch these directories of `root`."""
    from buildkit.server import protocol as serverproto

    sock = serverproto.connect(socket_path, timeout=2.0)
    if sock is None:
        return
    with sock, contextlib.suppress(OSError):
        serverproto.send(sock, {"op": "watch", "root": root, "dirs": reldirs})


class Inotify:
    """A non-blocking inotify descriptor (Linux), through libc."""

    def __init__(self) -> None:
        import ctypes
        import ctypes.util

        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._get_errno = ctypes.get_errno
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(self._get_errno(), "inotify_init1 failed")
        self.fd: int = fd

    def add(self, path: str) -> int:
        wd = int(self._libc.inotify_add_watch(self.fd, os.fsencode(path), _MASK))
        if wd < 0:
            raise OSError(self._get_errno(), f"inotify_add_watch {path}")
        return wd

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> list[tuple[int, int, str]]:
        """Every queued event as (wd, mask, name); [] when none is pending."""
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return events
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                raw = data[offset : offset + size].rstrip(b"\0")
                offset += size
                events.append((wd, mask, os.fsdecode(raw)))

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class _Root:
    epoch: str
    watched: dict[str, int] = field(default_factory=dict)  # reldir -> seq when added
    wds: dict[int, str] = field(default_factory=dict)  # wd -> reldir
    changed: dict[str, int] = field(default_factory=dict)


class Watcher:
    """The server's side: watches, event numbers, and the feeds handed to workers."""

    def __init__(self, inotify: Inotify | None = None) -> None:
        self.inotify = inotify or Inotify()
        self.seq = 0
        self.roots: dict[str, _Root] = {}
        self._by_wd: dict[int, str] = {}  # wd -> root (a wd is unique per inotify fd)

    def watch(self, root: str, reldirs: Iterable[str]) -> int:
        """Watch these directories of `root` (the ones a walk descended); returns how many are
        newly watched. A directory that cannot be watched forgets the root: partial is unsafe."""
        self.drain()
        state = self.roots.get(root) or _Root(epoch=os.urandom(6).hex())
        self.roots[root] = state
        added = 0
        for reldir in reldirs:
            if reldir in state.watched:
                continue
            if len(state.watched) >= MAX_DIRS_PER_ROOT:
                self.forget(root)
                return 0
            path = f"{root}/{reldir}" if reldir else root
            try:
                wd = self.inotify.add(path)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    continue  # gone since the walk: its parent's event says so
                self.forget(root)  # ENOSPC (watch limit), EACCES: no partial watching
                return 0
            state.watched[reldir] = self.seq
            state.wds[wd] = reldir
            self._by_wd[wd] = root
            added += 1
        return added

    def drain(self) -> int:
        """Read every pending event; returns how many there were."""
        events = self.inotify.read()
        for wd, mask, _name in events:
            self.seq += 1
            if mask & IN_Q_OVERFLOW:
                for stale in list(self.roots):
                    self.forget(stale)
                continue
            root = self._by_wd.get(wd)
            if root is None or (state := self.roots.get(root)) is None:
                continue
            moved_dir = mask & IN_ISDIR and mask & (IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE)
            if mask & _LOST or moved_dir:
                self.forget(root)  # paths under it changed meaning: start over
                continue
            # A new subdirectory needs no mark: it is not watched, so never trusted until a
            # walk has read it and asked for its watch.
            state.changed[state.wds[wd]] = self.seq
        return len(events)

    def forget(self, root: str) -> None:
        state = self.roots.pop(root, None)
        if state is None:
            return
        for wd in state.wds:
            self._by_wd.pop(wd, None)
            with contextlib.suppress(OSError):
                self.inotify.remove(wd)

    def counts(self) -> dict[str, int]:
        """Watched directories per root (for `imgbuild server status`)."""
        return {root: len(state.watched) for root, state in self.roots.items()}

    def feeds(self) -> dict[str, Feed]:
        """Snapshots for a worker about to be forked (call `drain()` first)."""
        return {
            root: Feed(state.epoch, self.seq, dict(state.watched), dict(state.changed))
            for root, state in self.roots.items()
        }

    def close(self) -> None:
        self.inotify.close()
