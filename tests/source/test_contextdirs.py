"""Empty directories in the app's key: BuildKit sends them and `COPY .` puts them in the image."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from buildkit.source.contextdirs import sent_dirs
from buildkit.source.dockerignore import IgnoreRules
from buildkit.source.hashing import combine, hash_tree

# `log`, `keep` and `drop` are entered (a `!` pattern may re-include something below them);
# `tmp` is pruned; `docs` is kept though all it holds is ignored.
RULES = IgnoreRules(["log", "!log/.keep", "tmp", "keep", "!keep/empty", "drop", "!drop/.keep"])
RULES = RULES.extended(["docs/*.md"])
FILES = ["app/models/user.rb", "log/.keep", "log/development.log", "tmp/cache/x", "docs/a.md"]
EMPTY = ["empty", "app/empty", "lib/deep/er", "tmp/pids", "log/empty", "keep/empty", "drop/sub"]
SENT_EMPTY = {"empty", "app/empty", "lib/deep/er", "keep/empty", "docs"}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    for rel in EMPTY:
        (root / rel).mkdir(parents=True)
    return root


def test_the_empty_directories_sent_are_counted(tree: Path) -> None:
    digest = hash_tree(tree, RULES, empty_dirs=True)
    # Not tmp/pids (pruned), log/empty and drop/sub (ignored, only entered for a `!` line);
    # keep/empty is re-included; docs is kept, and empty once its only file is ignored.
    assert digest.empty_dirs == SENT_EMPTY
    assert digest.digest == combine(digest.files, SENT_EMPTY)
    assert digest.digest != hash_tree(tree, RULES).digest


@pytest.mark.parametrize(
    ("made", "moves"),
    [
        pytest.param("more", True, id="empty directory"),
        pytest.param("app/models/concerns", True, id="nested empty directory"),
        pytest.param("tmp/more", False, id="in a pruned directory"),
        pytest.param("log/more", False, id="in an ignored directory entered for a ! line"),
        pytest.param("drop/more", False, id="in an ignored directory with nothing re-included"),
    ],
)
def test_adding_an_empty_directory(tree: Path, made: str, moves: bool) -> None:
    before = hash_tree(tree, RULES, empty_dirs=True).digest
    (tree / made).mkdir()
    assert (hash_tree(tree, RULES, empty_dirs=True).digest != before) is moves


def test_a_directory_filled_is_counted_by_its_file(tree: Path) -> None:
    (tree / "empty/x").write_text("x")
    digest = hash_tree(tree, RULES, empty_dirs=True)
    assert "empty" not in digest.empty_dirs
    assert "empty/x" in digest.files


def test_an_empty_directory_is_not_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/foo").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b/foo").write_bytes(b"")
    nothing = IgnoreRules([])
    as_dir = hash_tree(tmp_path / "a", nothing, empty_dirs=True)
    as_file = hash_tree(tmp_path / "b", nothing, empty_dirs=True)
    assert as_dir.empty_dirs == {"foo"}
    assert not as_file.empty_dirs
    assert as_dir.digest != as_file.digest


def test_a_tree_without_empty_directories_keeps_its_digest(tmp_path: Path) -> None:
    """Existing caches stay valid: the digest is the one imgbuild computed before directories
    counted (the value below was computed by that version of `combine`)."""
    files = {
        "Gemfile": "sha256:" + hashlib.sha256(b"gem\n").hexdigest(),
        "app/a.rb": "sha256:" + hashlib.sha256(b"a\n").hexdigest() + "+x",
        "link": "link:app",
    }
    assert combine(files) == "5c1996bb2822c4e188e24266aa907328233074b5ec3e0913b3d9d9f3656698f4"
    assert combine(files, ()) == combine(files)
    (tmp_path / "app").mkdir()
    (tmp_path / "app/a.rb").write_text("a\n")
    (tmp_path / "app/a.rb").chmod(0o755)
    (tmp_path / "Gemfile").write_text("gem\n")
    (tmp_path / "link").symlink_to("app")
    assert hash_tree(tmp_path, IgnoreRules([]), empty_dirs=True).digest == combine(files)


def test_sent_dirs_of_a_scoped_walk_leave_the_scopes_parents_out() -> None:
    sent = sent_dirs(["vendor/cache/a.gem"], ["vendor/cache", "vendor/cache/x"], IgnoreRules([]))
    assert sent.all == {"vendor/cache", "vendor/cache/x"}
    assert sent.empty == {"vendor/cache/x"}
