"""A directory watcher's word on a tree, as `hashing.hash_tree` reads it.

A warm walk must `lstat` every file to see an edit. When a watcher (inotify, run by `imgbuild
server`: buildkit.server.watcher) has watched a directory since before the cached walk and seen no
event in it, the walk may trust the cached listing without a stat. This module is the contract
between the two: the server hands a worker a `TreeWatch` just before it forks (`install`), or a
caller passes one to `hash_tree(watch=...)`; everything else has none and stats every file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Feed:
    """What a worker knows about one watched root, as of the moment it was forked."""

    epoch: str
    """Changes with every (re)start of the root's watch: a token of another epoch is void."""
    seq: int
    """The last event number read before the fork: the token a walk saves."""
    watched: dict[str, int] = field(repr=False)
    """reldir -> the event number when its watch was added."""
    changed: dict[str, int] = field(repr=False)
    """reldir -> the number of the last event in it (or of a change to its entries)."""

    def trusted(self, reldir: str, since: int) -> bool:
        """Unchanged since event `since`, and watched since before it."""
        added = self.watched.get(reldir)
        return added is not None and added <= since and self.changed.get(reldir, 0) <= since


def _ask_nobody(_root: str, _reldirs: list[str]) -> None:
    return None


@dataclass(frozen=True)
class TreeWatch:
    """The feeds of every watched root, and how to ask the watcher to watch more."""

    feeds: Mapping[str, Feed]
    ask: Callable[[str, list[str]], None] = _ask_nobody
    """Ask the watcher to watch these directories of a root (a walk just read them). Fire and
    forget: a watch added later than the walk's token is simply not trusted yet."""

    def feed_for(self, root: str) -> Feed | None:
        return self.feeds.get(root)

    def request(self, root: str, reldirs: list[str]) -> None:
        if reldirs:
            self.ask(root, reldirs)


_installed: TreeWatch | None = None


def install(watch: TreeWatch | None) -> None:
    """The process's watch: set by a server worker (the server itself never walks a tree)."""
    global _installed
    _installed = watch


def installed() -> TreeWatch | None:
    return _installed
