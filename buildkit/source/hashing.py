"""Fast content digests of a build context, so imgbuild can tell whether an image is stale.

A walk honours the same ignore rules BuildKit does (pruning excluded trees), stats every
file, and hashes only the files a persistent `DigestCache` cannot vouch for, on a few
threads: hashlib and file reads release the GIL, so cold hashing scales past one core.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from buildkit import log
from buildkit.source.contextdirs import sent_dirs
from buildkit.source.digestcache import DigestCache, executable, hash_file
from buildkit.source.dockerignore import IgnoreRules
from buildkit.source.treewatch import Feed, TreeWatch, installed

__all__ = ["DigestCache", "TreeDigest", "combine", "diff_inputs", "hash_file", "hash_tree"]

# A few threads overlap reads and hashing; more only fight over the GIL for small files.
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_WORKERS = min(4, _CPUS or 1)
_BATCH = 32  # files per pool task: amortizes task overhead over many small files
_MAX_REASONS = 10
# Directories re-checked because the watcher saw events in them since the saved token: past
# this many, the next save moves the token forward (rewriting the cache) so they are trusted.
_RESYNC_AFTER = 64


@dataclass(frozen=True)
class TreeDigest:
    """The digest of a set of files, with the per-file entries it was computed from."""

    digest: str
    """sha256 hex over the sorted (relpath, entry) pairs."""
    files: Mapping[str, str] = field(repr=False, hash=False)
    """relpath -> `sha256:<hex>` (suffixed `+x` when u+x is set) or `link:<target>`."""
    files_read: int = field(default=0, compare=False)
    """How many files had their contents read (the rest came from the cache)."""
    empty_dirs: frozenset[str] = field(default=frozenset(), hash=False)
    """Directories sent with nothing in them (hash_tree's `empty_dirs`), part of `digest`."""


def hash_tree(
    root: Path,
    rules: IgnoreRules,
    *,
    cache: DigestCache | None = None,
    only: Sequence[str] | None = None,
    watch: TreeWatch | None = None,
    empty_dirs: bool = False,
) -> TreeDigest:
    """Digest the files under `root` that `rules` keep (regular files and symlinks).

    `only` restricts the walk to those relative paths (files or directories); missing
    ones are skipped. Symlinks are never followed. `watch`: a watcher's word on the tree
    (source.treewatch; default: the one a server worker was handed, else none).
    `empty_dirs`: digest the directories BuildKit would send with nothing in them too (a
    `COPY .` puts them in the image); a tree without any keeps the digest it had without.
    """
    now_ns = time.time_ns()  # before any read, so the racy check errs on the safe side
    if cache is not None and not cache.loaded:
        cache.load()
    walk = _Walk(os.fspath(root), rules, cache, now_ns)
    watch = watch if watch is not None else installed()
    feed = watch.feed_for(walk.root) if cache is not None and watch is not None else None
    since = cache.watch_since(walk.root, feed.epoch) if cache and feed else None
    if feed is not None and since is not None:
        walk.trust = lambda reldir: feed.trusted(reldir, since)
    scopes = _scopes(only)
    for scope in scopes:
        walk.collect(scope)
        if cache is not None:
            cache.mark_walked(scope)
    found = walk.found
    files, misses = _known_entries(found, cache)
    files.update(walk.known)
    digests = _hash_all([found[rel][0] for rel, _ in misses])
    for (rel, st), digest in zip(misses, digests, strict=True):
        if digest is None:
            continue  # deleted while we were walking
        if cache is not None:
            cache.store(rel, st, digest, now_ns=now_ns)
        files[rel] = _entry(digest, st)
    if cache is not None:
        cache.mark_seen(walk.known)
        if scopes == [""]:
            _keep_watching(walk, cache, watch, feed, since)
    if walk.trust is not None:
        changed = ", ".join(walk.rechecked[:3]) or "none"
        log.debug(
            f"hashed {walk.root}: {walk.trusted} of {len(walk.dirs)} directories trusted on the "
            f"watcher's word (changed: {changed}), {len(misses)} file(s) read"
        )
    empty = sent_dirs(files, walk.dirs, rules).empty if empty_dirs else frozenset()
    return TreeDigest(combine(files, empty), files, files_read=len(misses), empty_dirs=empty)


def _keep_watching(
    walk: _Walk,
    cache: DigestCache,
    watch: TreeWatch | None,
    feed: Feed | None,
    since: int | None,
) -> None:
    """After a whole-tree walk: ask the server to watch what it does not yet, and move the
    cache's token to this walk when the cache is rewritten anyway or too much is re-checked.

    Only a whole-tree walk moves the token: every directory's data is then at least as new as
    the token (trusted ones were unchanged since the old token, the others were just read)."""
    if watch is None:
        return  # not a server's worker: nobody to ask
    if feed is None:
        watch.request(walk.root, walk.dirs)
        return
    unwatched = [d for d in walk.dirs if d not in feed.watched]
    if unwatched:
        watch.request(walk.root, unwatched)
    if since is None or cache.dirty or len(walk.rechecked) > _RESYNC_AFTER:
        cache.set_watch_token(walk.root, feed.epoch, feed.seq)


def diff_inputs(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Why two file maps differ, one reason per path, sorted, capped at ten plus a tally."""
    reasons = []
    for rel in sorted(old.keys() | new.keys()):
        if rel not in old:
            reasons.append(f"{rel} added")
        elif rel not in new:
            reasons.append(f"{rel} removed")
        elif old[rel] != new[rel]:
            reasons.append(f"{rel} changed")
    if len(reasons) > _MAX_REASONS:
        extra = len(reasons) - _MAX_REASONS
        reasons = [*reasons[:_MAX_REASONS], f"… and {extra} more"]
    return reasons


def _scopes(only: Sequence[str] | None) -> list[str]:
    """`only` as clean relative paths ('' = the whole tree); reject paths leaving the root."""
    if only is None:
        return [""]
    scopes = []
    for raw in only:
        rel = posixpath.normpath(raw)
        if rel.startswith(("/", "../")) or rel == "..":
            raise ValueError(f"only= path {raw!r} is not inside the context")
        scopes.append("" if rel == "." else rel)
    return scopes


class _Walk:
    """One walk of a tree: every kept regular file and symlink, with its lstat, in `found`."""

    def __init__(
        self, root: str, rules: IgnoreRules, cache: DigestCache | None, now_ns: int
    ) -> None:
        self.root = root
        self.now_ns = now_ns
        self.rules = rules
        self.cache = cache
        self.rules_id = hashlib.sha256("\n".join(rules.patterns).encode()).hexdigest()[:16]
        self.found: dict[str, tuple[str, os.stat_result]] = {}
        self.known: dict[str, str] = {}  # entries of relisted files the cache vouched for
        self.trust: Callable[[str], bool] | None = None  # the watcher's word, in a server
        self.dirs: list[str] = []  # every directory descended
        self.rechecked: list[str] = []  # directories the watcher saw change since the token
        self.trusted = 0  # directories taken from the cache without a stat

    def collect(self, scope: str) -> None:
        """Add every kept file under `root`/`scope` ('' for the whole tree)."""
        path = f"{self.root}/{scope}" if scope else self.root
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return  # e.g. no vendor/cache: the scope simply contributes nothing
        if not stat.S_ISDIR(st.st_mode):
            if scope and _wanted(st.st_mode) and not self.rules.is_ignored(scope):
                self.found[scope] = (path, st)
            return
        if scope and not self.rules.may_descend(scope):
            return
        stack: list[tuple[str, os.stat_result | None]] = [(scope, st)]
        while stack:
            reldir, dir_st = stack.pop()
            self.dirs.append(reldir)
            dirpath = f"{self.root}/{reldir}" if reldir else self.root
            if self.trust is not None and self._relist_trusted(reldir, dirpath, stack):
                continue
            if dir_st is None:  # a trusted parent's subdirectory: not stat'ed yet
                try:
                    dir_st = os.lstat(dirpath)
                except FileNotFoundError:
                    continue
                if not stat.S_ISDIR(dir_st.st_mode):
                    continue
            known = self.cache.listing(reldir, dir_st, self.rules_id) if self.cache else None
            if known is not None:
                self._relist(reldir, dirpath, known[4], known[5], stack)
            else:
                self._scan(reldir, dirpath, dir_st, stack)

    def _relist_trusted(
        self, reldir: str, dirpath: str, stack: list[tuple[str, os.stat_result | None]]
    ) -> bool:
        """A directory the watcher saw no event in since the cached walk: its listing and
        entries as cached, no stat. False (walk it the usual way) when it did change or the
        cache lacks something; a file without a whole entry is stat'ed and hashed."""
        assert self.trust is not None
        assert self.cache is not None
        if not self.trust(reldir):
            self.rechecked.append(reldir)
            return False
        listing = self.cache.trusted_listing(reldir, self.rules_id)
        if listing is None:
            return False
        prefix = reldir + "/" if reldir else ""
        get, known = self.cache.entries.get, self.known
        for name in listing[4]:
            rel = prefix + name
            entry = get(rel)
            if (
                type(entry) is list
                and len(entry) == 5  # [size, mtime, inode, digest, u+x]
                and type(digest := entry[3]) is str
                and entry[4] in (0, 1)
            ):
                known[rel] = digest + "+x" if entry[4] else digest
            else:  # a symlink, a racy file, a damaged entry: look at it
                self._relist_carefully(prefix, dirpath, [name])
        stack.extend((prefix + name, None) for name in listing[5])
        self.trusted += 1
        return True

    def _relist(
        self,
        reldir: str,
        dirpath: str,
        names: list[str],
        subdirs: list[str],
        stack: list[tuple[str, os.stat_result | None]],
    ) -> None:
        """An unchanged directory: stat what it held last time, no scandir, no ignore rules.

        The hot loop of a warm walk (10k files: ~45 ms of lstat, the rest is this loop), so
        the cache check is inlined; a damaged entry fails the comparison or raises, and the
        directory is then redone the careful way."""
        assert self.cache is not None  # relisting needs the listing the cache keeps
        prefix = reldir + "/" if reldir else ""
        get, known, found = self.cache.entries.get, self.known, self.found
        lstat, isreg = os.lstat, stat.S_ISREG
        hits: dict[str, str] = {}
        try:
            for name in names:
                path = f"{dirpath}/{name}"
                try:
                    st = lstat(path)
                except FileNotFoundError:
                    continue
                rel = prefix + name
                entry = get(rel)
                if (
                    entry is not None
                    and entry[0] == st.st_size
                    and entry[1] == st.st_mtime_ns
                    and entry[2] == st.st_ino
                    and isreg(st.st_mode)
                    and type(digest := entry[3]) is str
                    and entry[4] == executable(st.st_mode)
                ):
                    hits[rel] = _entry(digest, st)
                elif _wanted(st.st_mode):
                    found[rel] = (path, st)
        except (TypeError, IndexError, KeyError):  # a damaged cache entry: no fast path here
            self._relist_carefully(prefix, dirpath, names)
        else:
            known.update(hits)
        for name in subdirs:
            try:
                st = lstat(f"{dirpath}/{name}")
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append((prefix + name, st))

    def _relist_carefully(self, prefix: str, dirpath: str, names: list[str]) -> None:
        """Stat the names of a directory whose cache entries are damaged: every file is found
        again, and `_known_entries` checks each entry with `DigestCache.lookup`."""
        for name in names:
            path = f"{dirpath}/{name}"
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if _wanted(st.st_mode):
                self.found[prefix + name] = (path, st)

    def _scan(
        self,
        reldir: str,
        dirpath: str,
        dir_st: os.stat_result,
        stack: list[tuple[str, os.stat_result | None]],
    ) -> None:
        """scandir: d_type answers is_dir() without a stat per entry."""
        prefix = reldir + "/" if reldir else ""
        names: list[str] = []
        subdirs: list[str] = []
        try:
            entries = os.scandir(dirpath)
        except FileNotFoundError:
            return  # removed mid-walk
        with entries:
            for entry in entries:
                rel = prefix + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if self.rules.may_descend(rel):
                            stack.append((rel, entry.stat(follow_symlinks=False)))
                            subdirs.append(entry.name)
                    elif (entry.is_file(follow_symlinks=False) or entry.is_symlink()) and not (
                        self.rules.is_ignored(rel)
                    ):
                        names.append(entry.name)
                        st = entry.stat(follow_symlinks=False)
                        if _wanted(st.st_mode):  # re-checked: it may have been replaced since
                            self.found[rel] = (entry.path, st)
                except FileNotFoundError:
                    continue
        if self.cache is not None:
            listing = (names, subdirs)
            self.cache.store_listing(reldir, dir_st, self.rules_id, listing, now_ns=self.now_ns)


def _wanted(mode: int) -> bool:
    """Regular files and symlinks go into a context digest; sockets, FIFOs, devices don't."""
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _known_entries(
    found: Mapping[str, tuple[str, os.stat_result]], cache: DigestCache | None
) -> tuple[dict[str, str], list[tuple[str, os.stat_result]]]:
    """Entries we get without reading contents (symlinks, cache hits), and the misses."""
    files: dict[str, str] = {}
    misses: list[tuple[str, os.stat_result]] = []
    for rel, (path, st) in found.items():
        if stat.S_ISLNK(st.st_mode):
            try:
                files[rel] = "link:" + os.readlink(path)  # noqa: PTH115 - str in, str out
            except FileNotFoundError:
                continue
        elif cache is not None and (digest := cache.lookup(rel, st)) is not None:
            files[rel] = _entry(digest, st)
        else:
            misses.append((rel, st))
    return files, misses


def _entry(digest: str, st: os.stat_result) -> str:
    """The digest-input entry of a file: its content digest, plus `+x` when u+x is set."""
    return digest + "+x" if st.st_mode & stat.S_IXUSR else digest


def _hash_all(paths: list[str]) -> list[str | None]:
    """Digests of `paths` in order (None for vanished files), on a pool when worth it."""
    if len(paths) < 2 * _BATCH or _WORKERS == 1:
        return _hash_batch(paths)
    batches = [paths[i : i + _BATCH] for i in range(0, len(paths), _BATCH)]
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="imgbuild-hash") as pool:
        return [digest for batch in pool.map(_hash_batch, batches) for digest in batch]


def _hash_batch(paths: list[str]) -> list[str | None]:
    """Hash a few files in one pool task."""
    digests: list[str | None] = []
    for path in paths:
        try:
            digests.append("sha256:" + hash_file(path))
        except FileNotFoundError:
            digests.append(None)
    return digests


def combine(files: Mapping[str, str], dirs: Iterable[str] = ()) -> str:
    """sha256 over the sorted entries; NUL separators cannot occur in paths or targets.

    A directory is the entry `<rel>/` = `dir`: no file's path ends in `/`, so an empty
    directory `foo` and an empty file `foo` differ, and without `dirs` nothing changes."""
    entries = {**files, **{f"{rel}/": "dir" for rel in dirs}}
    text = "".join(f"{rel}\0{entries[rel]}\0" for rel in sorted(entries))
    # surrogateescape turns undecodable file names back into their original bytes.
    payload = b"imgbuild-tree-v1\0" + text.encode("utf-8", "surrogateescape")
    return hashlib.sha256(payload).hexdigest()
