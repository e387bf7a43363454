"""The persistent digest cache of a build context: file digests keyed by their stat, and the
listing of every walked directory, so a warm walk reads no file and scans no directory that did
not change (hashing.py walks; this module remembers)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from buildkit import log
from buildkit.fsutil import atomic_write_text

__all__ = ["DigestCache", "executable", "hash_file"]

_CHUNK = 1 << 20
# A file modified this recently may change again within the same mtime tick (or within a
# coarse filesystem's 2 s granularity) without its stat changing: don't cache its digest.
_RACY_NS = 2_000_000_000
# 2: entries gained the u+x flag and the file the watcher tokens (version 1 files start empty).
_CACHE_VERSION = 2
_ENTRY_LEN = 5

_local = threading.local()

# Cache entries stay the JSON lists they were loaded as, checked when used:
# a file: [size, mtime_ns, inode, digest, 1 if u+x else 0];
# a directory's listing, keyed by reldir NUL rules id:
#   [rules id, mtime_ns, ctime_ns, inode, kept names, subdirectories];
# a watcher token: [epoch, event number].
_Raw = Any


def executable(mode: int) -> int:
    """1 when u+x is set: part of a file's entry in a context digest."""
    return 1 if mode & stat.S_IXUSR else 0


def hash_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex of a file's contents (no prefix), streamed through a reused 1 MiB buffer."""
    view = getattr(_local, "view", None)
    if view is None:  # one buffer per thread: no 1 MiB allocation per small file
        view = _local.view = memoryview(bytearray(_CHUNK))
    digest = hashlib.sha256()
    # Unbuffered: readinto() goes straight to read(2), no BufferedReader in between.
    with open(path, "rb", buffering=0) as f:  # noqa: PTH123 - hot path, avoid Path objects
        while n := f.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()


class DigestCache:
    """File digests keyed by (relpath, size, mtime_ns, inode), persisted as one JSON file.

    An entry also records whether u+x was set (a context digest includes it), so a walk that
    trusts an unchanged directory on the word of `imgbuild server`'s watcher (`watch.Feed`)
    needs no stat at all; the token of that word (epoch and event number) is saved per root.

    It also keeps each walked directory's listing, keyed by the directory's mtime, ctime and
    inode: adding, removing or renaming an entry changes them, so a warm walk of an unchanged
    directory skips `scandir` and the ignore rules and only stats the files it listed (a
    10k-file tree: about 3 times faster). ctime cannot be set back (tar, `touch -d` set mtime only).

    Use one cache file per build context. `save()` forgets files that a walk covered but
    no longer saw (deleted or now ignored); files outside every walked scope are kept, so
    hashing only the Gemfiles does not evict the rest of the app.
    """

    def __init__(self, path: Path) -> None:
        """Remember where the cache lives; nothing is read until `load()`."""
        self.path = path
        self.loaded = False
        self.entries: dict[str, _Raw] = {}
        """relpath -> raw entry, read directly by a warm walk's hot loop."""
        self._dirs: dict[str, _Raw] = {}
        self._dirs_seen: set[str] = set()
        self._seen: set[str] = set()
        self._scopes: set[str] = set()
        self._tokens: dict[str, _Raw] = {}
        self._dirty = False

    def load(self) -> None:
        """Read the cache file; a missing, unreadable or corrupt one leaves the cache empty."""
        self.entries, self._dirs, self._tokens = _read_entries(self.path)
        self._seen.clear()
        self._dirs_seen.clear()
        self._scopes.clear()
        self._dirty = False
        self.loaded = True

    def lookup(self, relpath: str, st: os.stat_result) -> str | None:
        """The cached digest of `relpath` if its size, mtime, inode and u+x still match `st`."""
        entry = self.entries.get(relpath)
        # Entries are checked here, not at load: a damaged one is a miss, never a crash.
        if (
            type(entry) is not list
            or len(entry) != _ENTRY_LEN
            or entry[:3] != [st.st_size, st.st_mtime_ns, st.st_ino]
            or type(entry[3]) is not str
            or entry[4] != executable(st.st_mode)
        ):
            return None
        self._seen.add(relpath)
        return entry[3]

    def listing(self, reldir: str, st: os.stat_result, rules: str) -> list[Any] | None:
        """The kept names of `reldir` as last walked with `rules`, if it is unchanged."""
        entry = self.trusted_listing(reldir, rules)
        if entry is None or entry[1:4] != [st.st_mtime_ns, st.st_ctime_ns, st.st_ino]:
            return None
        return entry

    def trusted_listing(self, reldir: str, rules: str) -> list[Any] | None:
        """The kept names of `reldir` as last walked with `rules`, without checking its stat:
        for a directory the server's watcher saw no event in since the cached walk."""
        key = _listing_key(reldir, rules)
        entry = self._dirs.get(key)
        if (
            type(entry) is not list
            or len(entry) != 6
            or entry[0] != rules
            or type(entry[4]) is not list
            or type(entry[5]) is not list
        ):
            return None
        self._dirs_seen.add(key)  # kept on save (a stat mismatch re-stores it anyway)
        return entry

    def watch_since(self, root: str, epoch: str) -> int | None:
        """The event number the cached walk of `root` was current at, if of this `epoch`."""
        token = self._tokens.get(root)
        if type(token) is list and len(token) == 2 and token[0] == epoch and type(token[1]) is int:
            return token[1]
        return None

    def set_watch_token(self, root: str, epoch: str | None, seq: int) -> None:
        """Record (or with epoch None, drop) the watcher token a whole-tree walk was current at."""
        token = None if epoch is None else [epoch, seq]
        if self._tokens.get(root) != token:
            if token is None:
                self._tokens.pop(root, None)
            else:
                self._tokens[root] = token
            self._dirty = True

    @property
    def dirty(self) -> bool:
        """Whether `save()` has something new to write."""
        return self._dirty

    def store_listing(
        self,
        reldir: str,
        st: os.stat_result,
        rules: str,
        listing: tuple[list[str], list[str]],
        *,
        now_ns: int,
    ) -> None:
        """Record a directory's kept names, unless it changed too recently to trust."""
        key = _listing_key(reldir, rules)
        if max(st.st_mtime_ns, st.st_ctime_ns) >= now_ns - _RACY_NS:
            self._dirty |= self._dirs.pop(key, None) is not None
            return
        entry = [rules, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, *listing]
        self._dirs_seen.add(key)
        if self._dirs.get(key) != entry:
            self._dirs[key] = entry
            self._dirty = True

    def store(self, relpath: str, st: os.stat_result, digest: str, *, now_ns: int) -> None:
        """Record a digest computed at `now_ns`, unless the file is too fresh to trust."""
        if st.st_mtime_ns >= now_ns - _RACY_NS:
            self._dirty |= self.entries.pop(relpath, None) is not None
            return
        entry = [st.st_size, st.st_mtime_ns, st.st_ino, digest, executable(st.st_mode)]
        self._seen.add(relpath)
        if self.entries.get(relpath) != entry:
            self.entries[relpath] = entry
            self._dirty = True

    def file_digest(self, path: Path) -> str:
        """sha256 hex of one file outside any walked tree (keyed by its absolute path), read
        only when its stat changed: the no-op path must not re-read a 22 MB Ruby tarball."""
        if not self.loaded:
            self.load()
        st = path.stat()
        found = self.lookup(str(path), st)
        if found is None:
            found = hash_file(path)
            self.store(str(path), st, found, now_ns=time.time_ns())
        return found

    def mark_seen(self, relpaths: Iterable[str]) -> None:
        """Keep these entries on `save()` (a walk's hits, recorded in one go, not per file)."""
        self._seen.update(relpaths)

    def mark_walked(self, scope: str) -> None:
        """Note that a walk covered `scope` ('' for the whole tree), for eviction on save."""
        self._scopes.add(scope)

    def save(self) -> bool:
        """Write the cache atomically if anything changed; return whether it wrote."""
        stale = [rel for rel in self.entries if rel not in self._seen and self._walked(rel)]
        for rel in stale:
            del self.entries[rel]
        gone = [
            key
            for key in self._dirs
            if key not in self._dirs_seen and self._walked(key.partition("\0")[0])
        ]
        for key in gone:
            del self._dirs[key]
        if not (self._dirty or stale or gone):
            return False
        payload = {"version": _CACHE_VERSION, "entries": self.entries, "dirs": self._dirs,
                   "watch": self._tokens}  # fmt: skip
        try:
            atomic_write_text(self.path, json.dumps(payload, separators=(",", ":")))
        except OSError as exc:  # a cache we cannot write only costs speed next time
            log.warn(f"could not save the digest cache {self.path}: {exc}")
            return False
        self._dirty = False
        return True

    def _walked(self, relpath: str) -> bool:
        """Whether a walk since `load()` covered `relpath`."""
        if "" in self._scopes:
            return True
        return any(relpath == s or relpath.startswith(s + "/") for s in self._scopes)


def _listing_key(reldir: str, rules: str) -> str:
    """Listings are kept per set of ignore rules: the app's walk and the base's (no rules, a
    few paths) share a cache and would otherwise replace each other's every run."""
    return f"{reldir}\0{rules}"


def _read_entries(path: Path) -> tuple[dict[str, _Raw], dict[str, _Raw], dict[str, _Raw]]:
    """Parse a cache file; any damage to its shape means empty. Single entries are checked
    when looked up (a 10k-file cache loads in ~10 ms instead of ~20 with a validating pass)."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}, {}, {}
    if not isinstance(raw, dict) or raw.get("version") != _CACHE_VERSION:
        return {}, {}, {}
    entries, dirs, tokens = raw.get("entries"), raw.get("dirs", {}), raw.get("watch", {})
    if not isinstance(entries, dict) or not isinstance(dirs, dict) or not isinstance(tokens, dict):
        return {}, {}, {}
    return entries, dirs, tokens
