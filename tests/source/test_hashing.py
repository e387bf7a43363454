"""Content hashing of build contexts, on real temporary trees."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from buildkit.source.dockerignore import DEFAULT_PATTERNS, IgnoreRules
from buildkit.source.hashing import DigestCache, TreeDigest, diff_inputs, hash_file, hash_tree

DEFAULTS = IgnoreRules(DEFAULT_PATTERNS)
NOTHING = IgnoreRules([])
OLD_NS = 1_600_000_000 * 10**9  # well outside the 2 s "too fresh to cache" window


def write(root: Path, rel: str, data: bytes | str = "x", *, old: bool = True) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    if old:
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return path


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    write(root, "Gemfile", "source 'https://rubygems.org'\n")
    write(root, "Gemfile.lock", "GEM\n")
    write(root, "vendor/cache/rails.gem", b"\0gem")
    write(root, "app/models/user.rb", "class User; end\n")
    write(root, "config/master.key", "secret")
    write(root, ".git/HEAD", "ref: refs/heads/main\n")
    write(root, "log/development.log", "noise")
    return root


def test_hash_file_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB reads plus a tail
    path = write(tmp_path, "big.bin", data)
    assert hash_file(path) == hashlib.sha256(data).hexdigest()
    assert hash_file(write(tmp_path, "empty", b"")) == hashlib.sha256(b"").hexdigest()


def test_tree_lists_kept_files_with_content_digests(app: Path) -> None:
    tree = hash_tree(app, DEFAULTS)
    assert dict(tree.files) == {
        "Gemfile": sha(b"source 'https://rubygems.org'\n"),
        "Gemfile.lock": sha(b"GEM\n"),
        "vendor/cache/rails.gem": sha(b"\0gem"),
        "app/models/user.rb": sha(b"class User; end\n"),
    }
    assert tree.files_read == 4
    assert len(tree.digest) == 64
    assert hash_tree(app, DEFAULTS).digest == tree.digest


def test_digest_follows_content_additions_and_removals(app: Path) -> None:
    before = hash_tree(app, DEFAULTS)
    write(app, "app/models/user.rb", "class User < ApplicationRecord; end\n")
    write(app, "app/models/post.rb", "class Post; end\n")
    (app / "Gemfile.lock").unlink()
    after = hash_tree(app, DEFAULTS)
    assert after.digest != before.digest
    assert diff_inputs(before.files, after.files) == [
        "Gemfile.lock removed",
        "app/models/post.rb added",
        "app/models/user.rb changed",
    ]


def test_ignored_files_do_not_affect_the_digest(app: Path) -> None:
    before = hash_tree(app, DEFAULTS)
    write(app, "log/production.log", "more noise")
    write(app, ".git/refs/heads/main", "abc")
    write(app, "certs/server.pem", "-----BEGIN")
    assert hash_tree(app, DEFAULTS).digest == before.digest


def test_negated_file_inside_pruned_directory_is_hashed(app: Path) -> None:
    write(app, "log/.keep", "")
    tree = hash_tree(app, IgnoreRules([*DEFAULT_PATTERNS, "!log/.keep"]))
    assert "log/.keep" in tree.files
    assert "log/development.log" not in tree.files


def test_exec_bit_is_part_of_the_digest(app: Path) -> None:
    script = write(app, "bin/rails", "#!/usr/bin/env ruby\n")
    before = hash_tree(app, DEFAULTS)
    script.chmod(0o755)
    after = hash_tree(app, DEFAULTS)
    assert after.digest != before.digest
    assert after.files["bin/rails"] == sha(b"#!/usr/bin/env ruby\n") + "+x"
    assert diff_inputs(before.files, after.files) == ["bin/rails changed"]


def test_symlinks_are_recorded_not_followed(app: Path) -> None:
    (app / "current").symlink_to("app/models")
    (app / "config/link.rb").symlink_to("../app/models/user.rb")
    (app / "dangling").symlink_to("nowhere")
    tree = hash_tree(app, DEFAULTS)
    assert tree.files["current"] == "link:app/models"
    assert tree.files["config/link.rb"] == "link:../app/models/user.rb"
    assert tree.files["dangling"] == "link:nowhere"
    assert not any(rel.startswith("current/") for rel in tree.files)
    (app / "dangling").unlink()
    (app / "dangling").symlink_to("elsewhere")
    assert hash_tree(app, DEFAULTS).digest != tree.digest


def test_only_restricts_the_walk(app: Path) -> None:
    only = ["Gemfile", "Gemfile.lock", "vendor/cache"]
    base = hash_tree(app, NOTHING, only=only)
    assert set(base.files) == {"Gemfile", "Gemfile.lock", "vendor/cache/rails.gem"}
    write(app, "app/models/user.rb", "changed")
    assert hash_tree(app, NOTHING, only=only).digest == base.digest
    write(app, "vendor/cache/pg.gem", "pg")
    assert hash_tree(app, NOTHING, only=only).digest != base.digest


def test_only_skips_missing_paths_and_honours_rules(app: Path) -> None:
    tree = hash_tree(app, DEFAULTS, only=["Gemfile", "nope", "log", "./vendor/cache/"])
    assert set(tree.files) == {"Gemfile", "vendor/cache/rails.gem"}
    with pytest.raises(ValueError, match="inside the context"):
        hash_tree(app, DEFAULTS, only=["../etc"])


def test_cache_is_trusted_while_size_mtime_and_inode_match(app: Path, tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache" / "digests.json")
    first = hash_tree(app, DEFAULTS, cache=cache)
    assert cache.save()
    # Same size, same mtime, same inode, different bytes: only a cache hit returns the old
    # digest, which proves the cache is consulted instead of the file.
    write(app, "Gemfile.lock", "GEX\n")
    cache = DigestCache(tmp_path / "cache" / "digests.json")
    second = hash_tree(app, DEFAULTS, cache=cache)
    assert second.files_read == 0
    assert second.files["Gemfile.lock"] == sha(b"GEM\n")
    assert second.digest == first.digest
    # A new mtime invalidates the entry.
    os.utime(app / "Gemfile.lock", ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    third = hash_tree(app, DEFAULTS, cache=cache)
    assert third.files_read == 1
    assert third.files["Gemfile.lock"] == sha(b"GEX\n")


def test_fresh_files_are_not_cached(app: Path, tmp_path: Path) -> None:
    write(app, "app/models/new.rb", "just written", old=False)
    cache = DigestCache(tmp_path / "digests.json")
    hash_tree(app, DEFAULTS, cache=cache)
    cache.save()
    cache = DigestCache(tmp_path / "digests.json")
    again = hash_tree(app, DEFAULTS, cache=cache)
    assert again.files_read == 1  # the racy file is re-read, the others come from the cache


def test_corrupt_cache_files_start_empty(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "digests.json"
    expected = hash_tree(app, DEFAULTS).digest
    for junk in [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"version": 999, "entries": {}}',
        b'{"version": 2, "entries": []}',
        b'{"version": 2, "entries": {"Gemfile": [1, "x", 3, "d"], "a": "b"}}',
        b'{"version": 2, "entries": {}, "dirs": {}, "watch": []}',
        b"[" * 100_000,
    ]:
        path.write_bytes(junk)
        cache = DigestCache(path)
        cache.load()
        tree = hash_tree(app, DEFAULTS, cache=cache)
        assert tree.digest == expected
        assert tree.files_read == 4
        assert cache.save()
        assert json.loads(path.read_text())["version"] == 2


def test_directory_as_cache_path_does_not_crash_load(app: Path, tmp_path: Path) -> None:
    (tmp_path / "digests.json").mkdir()
    cache = DigestCache(tmp_path / "digests.json")
    cache.load()
    assert hash_tree(app, DEFAULTS, cache=cache).files_read == 4


def test_save_is_atomic_and_only_when_changed(app: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    path = cache_dir / "digests.json"
    cache = DigestCache(path)
    hash_tree(app, DEFAULTS, cache=cache)
    assert cache.save()
    assert [p.name for p in cache_dir.iterdir()] == ["digests.json"]  # no temp file left
    stamp = path.stat().st_mtime_ns
    cache = DigestCache(path)
    hash_tree(app, DEFAULTS, cache=cache)
    assert not cache.save()
    assert path.stat().st_mtime_ns == stamp


def test_unwritable_cache_is_not_fatal(app: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    cache = DigestCache(tmp_path / "file" / "digests.json")
    hash_tree(app, DEFAULTS, cache=cache)
    assert not cache.save()


def test_save_drops_vanished_files_but_keeps_unwalked_scopes(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "digests.json"
    cache = DigestCache(path)
    hash_tree(app, DEFAULTS, cache=cache)
    cache.save()
    (app / "app/models/user.rb").unlink()
    cache = DigestCache(path)
    hash_tree(app, DEFAULTS, cache=cache)
    assert cache.save()
    assert "app/models/user.rb" not in json.loads(path.read_text())["entries"]
    # A walk limited to the Gemfiles must not evict the rest of the app.
    write(app, "app/models/user.rb", "back")
    hash_tree(app, DEFAULTS, cache=cache)
    cache.save()
    cache = DigestCache(path)
    hash_tree(app, NOTHING, cache=cache, only=["Gemfile", "Gemfile.lock"])
    assert not cache.save()
    assert "app/models/user.rb" in json.loads(path.read_text())["entries"]


def test_warm_rehash_of_thousands_of_files_reads_nothing(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for i in range(3000):
        write(root, f"app/d{i % 30}/f{i}.rb", f"# file {i}\n" * (1 + i % 50))
    cache_path = tmp_path / "digests.json"
    cache = DigestCache(cache_path)
    cold = hash_tree(root, DEFAULTS, cache=cache)
    assert cold.files_read == 3000
    assert cache.save()
    cache = DigestCache(cache_path)
    warm = hash_tree(root, DEFAULTS, cache=cache)
    assert warm.files_read == 0
    assert warm == cold
    assert not cache.save()
    uncached = hash_tree(root, DEFAULTS)
    assert uncached.digest == cold.digest


def test_non_utf8_file_names(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    name = b"caf\xe9.rb"
    fd = os.open(os.fsencode(root) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"hi")
    os.close(fd)
    os.utime(os.fsencode(root) + b"/" + name, ns=(OLD_NS, OLD_NS))
    cache = DigestCache(tmp_path / "digests.json")
    tree = hash_tree(root, NOTHING, cache=cache)
    assert tree.files == {os.fsdecode(name): sha(b"hi")}
    assert cache.save()
    cache = DigestCache(tmp_path / "digests.json")
    assert hash_tree(root, NOTHING, cache=cache) == tree


def test_diff_inputs_caps_the_list() -> None:
    old = {f"f{i:02d}.rb": "sha256:a" for i in range(15)}
    new = dict.fromkeys(old, "sha256:b")
    reasons = diff_inputs(old, new)
    assert reasons[:2] == ["f00.rb changed", "f01.rb changed"]
    assert len(reasons) == 11
    assert reasons[-1] == "… and 5 more"
    ten = dict(list(new.items())[:10])
    assert len(diff_inputs(dict(list(old.items())[:10]), ten)) == 10
    assert diff_inputs(old, old) == []


def test_tree_digest_is_a_value() -> None:
    a = TreeDigest("d", {"x": "sha256:1"}, files_read=1)
    b = TreeDigest("d", {"x": "sha256:1"}, files_read=0)
    assert a == b
    assert "sha256:1" not in repr(a)


def test_timestamps_in_the_future_are_never_cached(app: Path, tmp_path: Path) -> None:
    future = time.time_ns() + 3600 * 10**9
    os.utime(app / "Gemfile", ns=(future, future))
    cache = DigestCache(tmp_path / "digests.json")
    hash_tree(app, DEFAULTS, cache=cache)
    cache.save()
    cache = DigestCache(tmp_path / "digests.json")
    assert hash_tree(app, DEFAULTS, cache=cache).files_read == 1


# -- directory listings: a warm walk of an unchanged directory skips scandir


@pytest.fixture
def listings_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh test directories have a ctime of now: trust them without waiting 2 s."""
    import buildkit.source.digestcache

    monkeypatch.setattr(buildkit.source.digestcache, "_RACY_NS", 0)


def scandir_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = os.scandir

    def spy(path: str) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", spy)
    return calls


def warm_tree(root: Path, path: Path, rules: IgnoreRules = DEFAULTS) -> TreeDigest:
    cache = DigestCache(path)
    tree = hash_tree(root, rules, cache=cache)
    cache.save()
    return tree


@pytest.mark.usefixtures("listings_trusted")
def test_unchanged_directories_are_not_scanned_again(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "digests.json"
    first = warm_tree(app, path)
    calls = scandir_calls(monkeypatch)
    second = warm_tree(app, path)
    assert calls == []
    assert second == first
    assert second.files_read == 0
    assert second.digest == hash_tree(app, DEFAULTS).digest


@pytest.mark.usefixtures("listings_trusted")
def test_added_removed_and_renamed_files_are_seen(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "digests.json"
    warm_tree(app, path)
    write(app, "app/models/post.rb", "class Post; end\n")
    assert "app/models/post.rb" in warm_tree(app, path).files
    (app / "app/models/post.rb").rename(app / "app/models/article.rb")
    renamed = warm_tree(app, path)
    assert "app/models/article.rb" in renamed.files
    assert "app/models/post.rb" not in renamed.files
    (app / "app/models/article.rb").unlink()
    gone = warm_tree(app, path)
    assert "app/models/article.rb" not in gone.files
    assert gone.digest == hash_tree(app, DEFAULTS).digest


@pytest.mark.usefixtures("listings_trusted")
def test_directory_mtime_set_back_does_not_hide_a_new_file(app: Path, tmp_path: Path) -> None:
    """tar and `touch -d` restore a directory's mtime; its ctime still moves."""
    path = tmp_path / "digests.json"
    warm_tree(app, path)
    models = app / "app/models"
    before = models.stat()
    write(app, "app/models/extracted.rb", "from a tarball")
    os.utime(models, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert models.stat().st_mtime_ns == before.st_mtime_ns
    assert "app/models/extracted.rb" in warm_tree(app, path).files


@pytest.mark.usefixtures("listings_trusted")
def test_listings_belong_to_their_ignore_rules(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "digests.json"
    assert "log/development.log" not in warm_tree(app, path, DEFAULTS).files
    assert "log/development.log" in warm_tree(app, path, NOTHING).files
    assert "log/development.log" not in warm_tree(app, path, DEFAULTS).files


@pytest.mark.usefixtures("listings_trusted")
def test_edited_file_in_a_relisted_directory_is_rehashed(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "digests.json"
    warm_tree(app, path)
    write(app, "app/models/user.rb", "class User < Base; end\n", old=False)
    tree = warm_tree(app, path)
    assert tree.files_read == 1
    assert tree.files["app/models/user.rb"] == sha(b"class User < Base; end\n")


def test_fresh_directories_are_rescanned(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the racy window a directory may still change in the same mtime tick."""
    path = tmp_path / "digests.json"
    warm_tree(app, path)
    calls = scandir_calls(monkeypatch)
    warm_tree(app, path)
    assert calls  # the fixture's directories are seconds old: never trusted


@pytest.mark.usefixtures("listings_trusted")
def test_damaged_listings_are_ignored(app: Path, tmp_path: Path) -> None:
    path = tmp_path / "digests.json"
    expected = hash_tree(app, DEFAULTS).digest
    for dirs in ('{"": "x", "app": [1, 2]}', '{"": ["r", 1, 2, 3, "no", []]}', "[]"):
        path.write_text(f'{{"version": 2, "entries": {{}}, "dirs": {dirs}}}')
        assert warm_tree(app, path).digest == expected


@pytest.mark.usefixtures("listings_trusted")
def test_damaged_file_entries_under_a_trusted_listing_are_misses(app: Path, tmp_path: Path) -> None:
    """The warm walk's inlined check: a damaged entry is re-read, never trusted or a crash."""
    path = tmp_path / "digests.json"
    expected = warm_tree(app, path)
    saved = json.loads(path.read_text())
    assert saved["dirs"]  # the listings stay valid: the fast path runs
    for junk in ([1], "x", None, 7, [1, 2, 3, 4], ["a", "b", "c", "d"], {"a": 1}):
        damaged = {**saved, "entries": dict.fromkeys(saved["entries"], junk)}
        path.write_text(json.dumps(damaged))
        cache = DigestCache(path)
        tree = hash_tree(app, DEFAULTS, cache=cache)
        assert tree.digest == expected.digest, junk
        assert tree.files_read == len(expected.files), junk
    # An entry whose stat matches but whose digest is not a string is damaged too.
    entries = {rel: [*entry[:3], 12345] for rel, entry in saved["entries"].items()}
    path.write_text(json.dumps({**saved, "entries": entries}))
    assert hash_tree(app, DEFAULTS, cache=DigestCache(path)).digest == expected.digest


@pytest.mark.usefixtures("listings_trusted")
def test_walks_with_other_rules_keep_their_own_listings(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's walk and the base's (no rules, a few paths) share one cache: neither may
    replace the other's listing of vendor/cache, or every run rescans it and rewrites the
    cache."""
    path = tmp_path / "digests.json"
    base_paths = ["Gemfile", "Gemfile.lock", "vendor/cache"]
    for _ in range(2):
        cache = DigestCache(path)
        hash_tree(app, DEFAULTS, cache=cache)
        hash_tree(app, IgnoreRules([]), cache=cache, only=base_paths)
        cache.save()
    calls = scandir_calls(monkeypatch)
    cache = DigestCache(path)
    hash_tree(app, DEFAULTS, cache=cache)
    hash_tree(app, IgnoreRules([]), cache=cache, only=base_paths)
    assert calls == []
    assert not cache.save()  # nothing changed: nothing written
