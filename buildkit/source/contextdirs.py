"""Which directories of a build context BuildKit sends, so `COPY .` puts them in the image.

As tonistiigi/fsutil's filtered walk does: a directory the ignore rules keep is sent even when
nothing in it is; an ignored one entered only because a `!` pattern might re-include something
below it is sent when something below it is. The app's key counts the empty ones among them
(an empty directory changes the image, so it changes the key) and the native layer writer
(applayer.layertar) writes them all: both take them from here, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from buildkit.source.dockerignore import IgnoreRules

__all__ = ["SentDirs", "sent_dirs"]


@dataclass(frozen=True)
class SentDirs:
    all: frozenset[str]  # every directory sent (relative, the context root left out)
    empty: frozenset[str]  # those with nothing sent below them


def sent_dirs(files: Iterable[str], walked: Iterable[str], rules: IgnoreRules) -> SentDirs:
    """The directories sent, from a walk's kept `files` and the directories it `walked`."""
    walked_dirs = set(walked)
    walked_dirs.discard("")
    holders: set[str] = set()  # directories with something sent below them
    for rel in files:
        _mark_parents(rel, holders)
    # The rest hold nothing sent: a kept one is sent all the same, an ignored one is not.
    kept = [d for d in walked_dirs - holders if not rules.is_ignored(d)]
    for rel in kept:
        _mark_parents(rel, holders)
    holders &= walked_dirs  # a walk of a scope (`only=`) leaves the scope's parents out
    return SentDirs(frozenset(holders.union(kept)), frozenset(kept).difference(holders))


def _mark_parents(rel: str, holders: set[str]) -> None:
    """Add the parent directories of `rel` to `holders`, stopping at one already there."""
    parent = rel.rpartition("/")[0]
    while parent and parent not in holders:
        holders.add(parent)
        parent = parent.rpartition("/")[0]
