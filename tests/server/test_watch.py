"""The server's watcher (real inotify) and the walk that trusts it: same digests as a cold
walk after every kind of change, and no stat at all for what did not change."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.server import watcher as watch
from buildkit.source.digestcache import DigestCache
from buildkit.source.dockerignore import IgnoreRules
from buildkit.source.hashing import TreeDigest, hash_tree
from buildkit.source.treewatch import Feed, TreeWatch

RULES = IgnoreRules(["log/", "tmp/"])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    for rel, text in {
        "Gemfile": "source 'x'\n",
        "app/models/user.rb": "class User; end\n",
        "app/models/admin/role.rb": "class Role; end\n",
        "config/routes.rb": "routes\n",
        "log/dev.log": "noise\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "bin").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\n")
    (root / "current").symlink_to("config")
    return root


@pytest.fixture
def trusted_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh files have a ctime of now: cache them without waiting out the racy window."""
    import buildkit.source.digestcache

    monkeypatch.setattr(buildkit.source.digestcache, "_RACY_NS", 0)


@pytest.fixture
def watcher() -> Iterator[watch.Watcher]:
    w = watch.Watcher()
    yield w
    w.close()


class Server:
    """What `imgbuild server` does around a worker's walk, minus the fork."""

    def __init__(self, watcher: watch.Watcher, root: Path, cache_path: Path) -> None:
        self.watcher, self.root, self.cache_path = watcher, str(root), cache_path

    def walk(self) -> TreeDigest:
        self.watcher.drain()
        cache = DigestCache(self.cache_path)
        tree = hash_tree(Path(self.root), RULES, cache=cache, watch=TreeWatch(self.watcher.feeds()))
        cache.save()
        return tree

    def watch_walked(self, tree: TreeDigest) -> None:
        dirs = {str(Path(rel).parent).removeprefix(".") for rel in tree.files} | {""}
        dirs |= {"/".join(d.split("/")[:i]) for d in dirs for i in range(1, d.count("/") + 1)}
        self.watcher.watch(self.root, sorted(dirs))


def lstat_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = os.lstat

    def spy(path: str, *args: object, **kwargs: object) -> os.stat_result:
        calls.append(str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", spy)
    return calls


def settle(server: Server, tree: Path) -> Server:
    """Walk, watch what was walked, walk again (token saved): the state of a warm server."""
    server.watch_walked(server.walk())
    server.walk()
    server.walk()
    return server


@pytest.mark.usefixtures("trusted_now")
def test_an_unchanged_tree_is_hashed_without_a_stat_per_file(
    tree: Path, tmp_path: Path, watcher: watch.Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = settle(Server(watcher, tree, tmp_path / "d.json"), tree)
    cold = hash_tree(tree, RULES)
    calls = lstat_calls(monkeypatch)
    warm = server.walk()
    assert warm == cold
    assert warm.files_read == 0
    # the root itself, and the symlink (its target is read, never cached): nothing else
    assert sorted(calls) == sorted([str(tree), str(tree / "current")])


@pytest.mark.usefixtures("trusted_now")
@pytest.mark.parametrize(
    "change",
    [
        "edit",
        "chmod",
        "new_file",
        "new_dir",
        "delete_file",
        "delete_dir",
        "rename_dir",
        "replace_by_rename",
        "symlink_retarget",
        "dockerignore",
    ],
)
def test_every_change_gives_the_cold_digest(
    change: str, tree: Path, tmp_path: Path, watcher: watch.Watcher
) -> None:
    server = settle(Server(watcher, tree, tmp_path / "d.json"), tree)
    user = tree / "app" / "models" / "user.rb"
    if change == "edit":
        user.write_text("class User; def x; end; end\n")
    elif change == "chmod":
        (tree / "config" / "routes.rb").chmod(0o755)
    elif change == "new_file":
        (tree / "app" / "models" / "admin" / "perm.rb").write_text("perm\n")
    elif change == "new_dir":
        (tree / "app" / "jobs" / "deep").mkdir(parents=True)
        (tree / "app" / "jobs" / "deep" / "job.rb").write_text("job\n")
    elif change == "delete_file":
        (tree / "Gemfile").unlink()
    elif change == "delete_dir":
        (tree / "app" / "models" / "admin" / "role.rb").unlink()
        (tree / "app" / "models" / "admin").rmdir()
    elif change == "rename_dir":
        (tree / "app" / "models").rename(tree / "app" / "records")
    elif change == "replace_by_rename":  # an editor's atomic save
        (tree / "config" / "routes.rb.tmp").write_text("routes v2\n")
        (tree / "config" / "routes.rb.tmp").rename(tree / "config" / "routes.rb")
    elif change == "symlink_retarget":
        (tree / "current").unlink()
        (tree / "current").symlink_to("app")
    elif change == "dockerignore":
        (tree / ".dockerignore").write_text("config/\n")
    after = server.walk()
    assert after == hash_tree(tree, RULES)
    again = server.walk()  # and the next walk still agrees (and watches what is new)
    assert again == hash_tree(tree, RULES)


@pytest.mark.usefixtures("trusted_now")
def test_a_new_directory_is_watched_after_the_walk_that_found_it(
    tree: Path, tmp_path: Path, watcher: watch.Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = settle(Server(watcher, tree, tmp_path / "d.json"), tree)
    (tree / "lib").mkdir()
    (tree / "lib" / "x.rb").write_text("x\n")
    server.watch_walked(server.walk())
    server.walk()  # the token moves past the new watch
    (tree / "lib" / "x.rb").write_text("changed\n")
    assert server.walk() == hash_tree(tree, RULES)


@pytest.mark.usefixtures("trusted_now")
def test_overflow_forgets_every_root(tree: Path, tmp_path: Path, watcher: watch.Watcher) -> None:
    """More events than the kernel queues (a branch switch, a `bundle package`): the watcher
    cannot know what changed, so nothing is trusted until the next walk re-watches."""
    settle(Server(watcher, tree, tmp_path / "d.json"), tree)
    assert str(tree) in watcher.roots
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    burst = tree / "config"
    for i in range(limit // 2 + 64):  # IN_CREATE + IN_CLOSE_WRITE each: past the queue
        (burst / f"f{i}").touch()
    watcher.drain()
    assert watcher.roots == {}
    assert hash_tree(tree, RULES, cache=DigestCache(tmp_path / "d.json")) == hash_tree(tree, RULES)


def test_feed_trusts_only_directories_watched_before_the_token(watcher: watch.Watcher) -> None:
    feed = Feed("e", 10, watched={"": 2, "a": 9, "b": 11}, changed={"a": 5, "c": 3})
    assert feed.trusted("", since=4)
    assert not feed.trusted("a", since=4)  # changed at 5
    assert feed.trusted("a", since=9)
    assert not feed.trusted("b", since=10)  # watched only after the token
    assert not feed.trusted("c", since=10)  # never watched


def test_a_cache_from_another_epoch_is_not_trusted(
    tree: Path, tmp_path: Path, watcher: watch.Watcher
) -> None:
    cache = DigestCache(tmp_path / "d.json")
    cache.load()
    cache.set_watch_token(str(tree), "old", 5)
    assert cache.watch_since(str(tree), "new") is None
    assert cache.watch_since(str(tree), "old") == 5
