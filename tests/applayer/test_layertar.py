"""The reproducible `COPY . <dest>` layer tarball (layertar.py), read back with gzip and tarfile."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from buildkit.applayer.layertar import LayerBlob, write_layer
from buildkit.errors import InputError
from buildkit.reports import layerfiles
from buildkit.source import hashing
from buildkit.source.dockerignore import IgnoreRules

REPO = Path(__file__).resolve().parents[2]
MTIME = 1_700_000_000
FILES = {
    "Gemfile": "source 'https://rubygems.org'\n",
    "app/models/user.rb": "class User; end\n",
    "app/models/order.rb": "class Order; end\n",
    "bin/rails": "#!/usr/bin/env ruby\n",
    "config/routes.rb": "Rails.application.routes.draw {}\n",
    "log/.keep": "",
    "log/development.log": "noise\n",
    "tmp/cache/x": "scratch\n",
    "node_modules/pkg/index.js": "module.exports = 1\n",
}
# `log` is entered (a `!` may re-include something below it); `tmp` and `node_modules` are pruned.
RULES = IgnoreRules(["log", "!log/.keep", "tmp", "node_modules"])


def make_tree(root: Path, files: dict[str, str]) -> Path:
    """`files` under `root`, directories 0755 and files 0644 whatever the umask."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def write(context: Path, out: Path, **kwargs: object) -> LayerBlob:
    options: dict[str, object] = {"rules": RULES, "dest": "/app/", "mtime": MTIME, **kwargs}
    rules, dest = options.pop("rules"), options.pop("dest")
    assert isinstance(rules, IgnoreRules)
    assert isinstance(dest, str)
    return write_layer(context, rules, dest, out, **options)  # type: ignore[arg-type]


def members(blob: LayerBlob) -> dict[str, tarfile.TarInfo]:
    """The layer's entries by name, in the order written (dicts keep it)."""
    with tarfile.open(blob.path, "r:gz") as tar:
        infos = tar.getmembers()
    by_name = {info.name: info for info in infos}
    assert len(by_name) == len(infos), "a name appears twice"
    return by_name


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "ctx", FILES)
    (root / "storage").mkdir()  # empty: copied all the same
    (root / "app/models/current.rb").symlink_to("user.rb")
    (root / "config/dangling").symlink_to("/nowhere/at/all")
    (root / "config/models").symlink_to("../app/models")  # a link to a directory: not followed
    (root / "bin/rails").chmod(0o755)
    (root / "config/routes.rb").chmod(0o600)
    (root / "config").chmod(0o750)
    return root


def test_digest_size_and_diff_id_describe_the_bytes(tmp_path: Path, tree: Path) -> None:
    out = tmp_path / "blobs" / "layer.tar.gz"
    blob = write(tree, out)
    data = out.read_bytes()
    assert blob.path == out
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert blob.size == len(data)
    assert blob.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert blob.entries == len(members(blob))
    # gzip: deflate, no flags (so no file name), mtime 0, XFL 4 (fastest), OS 255 (unknown).
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
    assert [p.name for p in out.parent.iterdir()] == ["layer.tar.gz"]  # no temp file left behind


def test_uncompressed_is_what_the_report_counts_in_the_blob(tmp_path: Path, tree: Path) -> None:
    (tree / "config" / "linked.rb").hardlink_to(tree / "config" / "routes.rb")
    blob = write(tree, tmp_path / "layer.tar.gz")
    with blob.path.open("rb") as fh:
        counted = layerfiles.read_tar(fh)
    # Regular files and symlink targets; a hard link is written as a file and counted as one.
    assert blob.uncompressed == counted.uncompressed > 0


def test_the_same_tree_gives_the_same_bytes_anywhere(tmp_path: Path, tree: Path) -> None:
    first = write(tree, tmp_path / "one.tar.gz")
    second = write(tree, tmp_path / "two.tar.gz")
    assert first.path.read_bytes() == second.path.read_bytes()
    # A copy made in the opposite order (other inodes, other directory order), other times.
    copy = tmp_path / "copy"
    for path in sorted(tree.rglob("*"), reverse=True):
        target = copy / path.relative_to(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(path.readlink())
        elif path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            shutil.copyfile(path, target)
    for path in copy.rglob("*"):
        if not path.is_symlink():
            path.chmod((tree / path.relative_to(copy)).stat().st_mode & 0o7777)
        os.utime(path, ns=(123_456_789, 987_654_321), follow_symlinks=False)
    other = write(copy, tmp_path / "three.tar.gz")
    assert (other.digest, other.diff_id) == (first.digest, first.diff_id)


def test_a_fixed_tree_has_a_fixed_diff_id(tmp_path: Path) -> None:
    """Guards the tar format: a change here changes every app layer's digest.

    Only the diff_id: the compressed bytes depend on the zlib build Python links against.
    """
    files = {"a.txt": "a\n", "d/b.txt": "b" * 600, "n/" + "é" * 60: "a long, non-ASCII name\n"}
    root = make_tree(tmp_path / "ctx", files)
    (root / "d/link").symlink_to("../a.txt")
    (root / "d/empty").mkdir(mode=0o700)
    (root / "d/empty").chmod(0o700)
    blob = write(root, tmp_path / "layer.tar.gz", rules=IgnoreRules(), extra_dirs=["/data"])
    assert blob.diff_id == "sha256:6b9ffaf6f6c203122f0e64eaafb72b56078b6d79ca0c90f0f3dd32bf3f5a86b5"


def test_holds_exactly_the_files_of_the_content_key(tmp_path: Path, tree: Path) -> None:
    blob = write(tree, tmp_path / "layer.tar.gz")
    entries = members(blob)
    files = {name.removeprefix("app/") for name, m in entries.items() if not m.isdir()}
    assert files == set(hashing.hash_tree(tree, RULES).files)
    assert "log/.keep" in files  # re-included by `!log/.keep`...
    assert entries["app/log"].isdir()  # ...so its ignored directory is written too
    assert "app/log/development.log" not in entries
    assert not [n for n in entries if n.startswith(("app/tmp", "app/node_modules"))]


def test_an_ignored_directory_is_written_only_around_what_it_re_includes(tmp_path: Path) -> None:
    files = {"keep/a/.keep": "", "keep/a/other": "x", "drop/other": "x", "drop/sub/y": "y"}
    root = make_tree(tmp_path / "ctx", files)
    (root / "keep/a").chmod(0o700)
    # Both `keep` and `drop` are entered: a `!` pattern could match below each.
    rules = IgnoreRules(["keep", "drop", "!keep/a/.keep", "!drop/.keep"])
    entries = members(write(root, tmp_path / "layer.tar.gz", rules=rules))
    assert [n for n in entries if n.startswith(("app/keep", "app/drop"))] == [
        "app/keep",
        "app/keep/a",
        "app/keep/a/.keep",
    ]
    assert entries["app/keep/a"].mode == 0o700  # the directory's own mode, as fsutil sends it


def test_writes_the_directories_the_content_key_counts(tmp_path: Path) -> None:
    """Empty, pruned, ignored-but-entered and re-included directories: the layer's directories
    are the ones BuildKit sends, and the empty ones among them are those the key counts."""
    files = {"app/a.rb": "", "log/.keep": "", "log/x.log": "", "tmp/x": "", "docs/a.md": ""}
    root = make_tree(tmp_path / "ctx", files)
    for rel in ("empty", "app/empty", "lib/deep/er", "tmp/pids", "log/empty", "keep/empty"):
        (root / rel).mkdir(parents=True)
    (root / "drop/sub").mkdir(parents=True)
    rules = IgnoreRules(["log", "!log/.keep", "tmp", "keep", "!keep/empty", "drop", "!drop/.k"])
    rules = rules.extended(["docs/*.md"])
    entries = members(write(root, tmp_path / "layer.tar.gz", rules=rules))
    dirs = {name.removeprefix("app/") for name, m in entries.items() if m.isdir()}
    assert dirs == {"app", "empty", "app/empty", "lib", "lib/deep", "lib/deep/er", "log"} | {
        "keep",
        "keep/empty",
        "docs",
    }
    empty = {d for d in dirs if not any(name.startswith(f"app/{d}/") for name in entries)}
    assert empty == hashing.hash_tree(root, rules, empty_dirs=True).empty_dirs


def test_symlinks_keep_their_targets_and_empty_directories_stay(tmp_path: Path, tree: Path) -> None:
    entries = members(write(tree, tmp_path / "layer.tar.gz"))
    links = {n: (m.linkname, m.mode) for n, m in entries.items() if m.issym()}
    assert links == {
        "app/app/models/current.rb": ("user.rb", 0o777),
        "app/config/dangling": ("/nowhere/at/all", 0o777),
        "app/config/models": ("../app/models", 0o777),
    }
    assert not [n for n in entries if n.startswith("app/config/models/")]
    assert entries["app/storage"].isdir()


def test_modes_come_from_the_disk_unless_chmod_is_given(tmp_path: Path, tree: Path) -> None:
    entries = members(write(tree, tmp_path / "plain.tar.gz"))
    for name, m in entries.items():
        source = tree / name.removeprefix("app/")
        if not m.issym():
            assert m.mode == source.lstat().st_mode & 0o7777, name
    assert (entries["app/bin/rails"].mode, entries["app/config"].mode) == (0o755, 0o750)
    changed = members(write(tree, tmp_path / "chmod.tar.gz", chmod=0o640, extra_dirs=["/x"]))
    modes = {n: m.mode for n, m in changed.items() if not m.issym()}
    assert modes.pop("x") == 0o755  # an extra directory: always 0755
    assert set(modes.values()) == {0o640}  # files and directories, as COPY --chmod
    assert {m.mode for m in changed.values() if m.issym()} == {0o777}


def test_every_entry_has_the_given_mtime_and_owner_and_no_names(tmp_path: Path, tree: Path) -> None:
    for owner, out in (((0, 0), "root.tar.gz"), ((1000, 1001), "app.tar.gz")):
        kwargs = {"owner": owner} if owner != (0, 0) else {}
        blob = write(tree, tmp_path / out, present_dirs=["/"], **kwargs)
        found = members(blob)
        assert found["app"].isdir()  # made by the COPY: its owner
        for m in found.values():
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (MTIME, *owner, "", "")
            assert not {"atime", "ctime", "mtime"} & set(m.pax_headers)


def test_extra_dirs_are_added_without_their_parents(tmp_path: Path, tree: Path) -> None:
    (tree / "storage").chmod(0o700)
    extra = ["/app/tmp/pids/", "/app/storage", "/srv/data", "/srv/data"]
    entries = members(write(tree, tmp_path / "layer.tar.gz", extra_dirs=extra, owner=(9, 9)))
    assert entries["app/tmp/pids"].isdir()
    # WORKDIR makes it as root (nativefile refuses a WORKDIR under another user).
    assert (entries["app/tmp/pids"].mode, entries["app/tmp/pids"].uid) == (0o755, 0)
    assert entries["srv/data"].isdir()
    assert entries["app/storage"].mode == 0o700  # the context's directory wins
    assert not {"app/tmp", "srv", "app"} & entries.keys()


def test_no_entry_for_the_destination_or_its_parents(tmp_path: Path, tree: Path) -> None:
    entries = members(write(tree, tmp_path / "deep.tar.gz", dest="/srv/www//app"))
    assert all(n.startswith("srv/www/app/") for n in entries)
    top = members(write(tree, tmp_path / "root.tar.gz", dest="/"))
    assert "Gemfile" in top
    assert not {"", ".", "/"} & top.keys()
    with pytest.raises(ValueError, match="not an absolute path"):
        write(tree, tmp_path / "rel.tar.gz", dest="app/")


def test_entries_are_sorted_bytewise_parents_first(tmp_path: Path) -> None:
    files = dict.fromkeys(("a-b", "a/b", "a.b", "ab", "a/b-c/d", "Z", "é", "éx", "e\u0301"), "x")
    root = make_tree(tmp_path / "ctx", files)
    names = list(members(write(root, tmp_path / "layer.tar.gz", rules=IgnoreRules())))
    assert names == sorted(names, key=os.fsencode)
    assert names.index("app/a") < names.index("app/a/b") < names.index("app/a/b-c")


def test_fifos_are_skipped_and_hard_links_are_files(tmp_path: Path, tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    os.link(tree / "Gemfile", tree / "Gemfile.copy")
    blob = write(tree, tmp_path / "layer.tar.gz")
    entries = members(blob)
    assert "app/pipe" not in entries
    assert entries["app/Gemfile.copy"].isreg()
    with tarfile.open(blob.path, "r:gz") as tar:
        copied = tar.extractfile("app/Gemfile.copy")
        assert copied is not None
        assert copied.read() == (tree / "Gemfile").read_bytes()


def test_a_file_that_vanishes_before_it_is_read_fails_cleanly(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collect = hashing._Walk.collect

    def collect_then_delete(walk: hashing._Walk, scope: str) -> None:
        collect(walk, scope)
        (tree / "config/routes.rb").unlink()  # listed, then gone: a racing editor

    monkeypatch.setattr(hashing._Walk, "collect", collect_then_delete)
    out = tmp_path / "blobs" / "layer.tar.gz"
    with pytest.raises(InputError, match=r"config/routes\.rb changed while the app layer"):
        write(tree, out)
    assert not list(out.parent.iterdir())  # neither `out` nor a temp file


def test_an_unreadable_file_names_itself(tmp_path: Path, tree: Path) -> None:
    """Real permission denied: as root, in a child without capabilities (so no DAC override)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop the DAC override")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    (tree / "config/routes.rb").chmod(0)
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from buildkit.applayer.layertar import write_layer\n"
        "from buildkit.errors import InputError\n"
        "from buildkit.source.dockerignore import IgnoreRules\n"
        "try:\n"
        "    write_layer(Path(sys.argv[1]), IgnoreRules(), '/app/', Path(sys.argv[2]), mtime=1)\n"
        "except InputError as exc:\n"
        "    print(exc.message)\n"
        "    sys.exit(4)\n"
    )
    out = tmp_path / "blobs" / "layer.tar.gz"
    argv = [*prefix, sys.executable, "-c", script, str(tree), str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 4, done.stderr
    assert done.stdout == (
        f"cannot read {tree}/config/routes.rb (permission denied) for the app layer; "
        "make it readable (chmod a+r) or add it to .dockerignore\n"
    )
    assert not list(out.parent.iterdir())


def test_extracting_the_layer_gives_back_the_tree(tmp_path: Path) -> None:
    files = {
        "README": "hello\n",
        "lib/big.bin": "",
        "lib/ünïcode.rb": "# encoding\n",
        "deep/" + "d" * 120 + "/" + "f" * 140: "long path\n",
        "bin/setup": "#!/bin/sh\n",
    }
    root = make_tree(tmp_path / "ctx", files)
    (root / "lib/link").symlink_to("ünïcode.rb")
    (root / "lib/big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # several chunks
    (root / "empty/inner").mkdir(parents=True)
    (root / "bin/setup").chmod(0o4755)
    (root / "lib").chmod(0o700)
    os.mkfifo(root / "pipe")
    blob = write(root, tmp_path / "layer.tar.gz", rules=IgnoreRules())
    extracted = tmp_path / "out"
    with tarfile.open(blob.path, "r:gz") as tar:
        tar.extractall(extracted, filter="fully_trusted")
    assert snapshot(extracted / "app") == snapshot(root, skip=frozenset({"pipe"}))


def snapshot(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[str, int, bytes]]:
    """relpath -> (kind, permission bits, contents or link target) of every entry under root."""
    found: dict[str, tuple[str, int, bytes]] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        mode = path.lstat().st_mode & 0o7777
        if path.is_symlink():
            found[rel] = ("link", 0, os.fsencode(path.readlink()))
        elif path.is_dir():
            found[rel] = ("dir", mode, b"")
        else:
            found[rel] = ("file", mode, path.read_bytes())
    return found


def test_pax_records_of_every_length_read_back(tmp_path: Path) -> None:
    """Non-ASCII names whose PAX `path` record straddles 99/100/101 bytes (a length digit more)."""
    names = ["é" * 42 + "x" * extra for extra in range(12)]  # records of 97 to 109 bytes
    root = make_tree(tmp_path / "ctx", dict.fromkeys(names, "x"))
    entries = members(write(root, tmp_path / "layer.tar.gz", rules=IgnoreRules()))
    assert {f"app/{name}" for name in names} <= entries.keys()


@pytest.mark.parametrize(
    ("present", "made"),
    [
        (None, []),  # the image has them all
        (["/", "/srv"], ["srv/app"]),
        (["/"], ["srv", "srv/app"]),
        (["/", "/srv", "/srv/app"], []),
    ],
)
def test_the_dest_and_parents_the_image_lacks_are_made_as_the_copy_makes_them(
    tmp_path: Path, tree: Path, present: list[str] | None, made: list[str]
) -> None:
    blob = write(
        tree,
        tmp_path / "layer.tar.gz",
        dest="/srv/app/",
        present_dirs=present,
        owner=(7, 8),
        chmod=0o750,
        extra_dirs=["/srv"],
    )
    entries = members(blob)
    for name in made:  # BuildKit's COPY gives the directories it creates its owner and mode
        assert (entries[name].isdir(), entries[name].uid, entries[name].mode) == (True, 7, 0o750)
    if "srv" not in made:  # the WORKDIR's, as root
        assert (entries["srv"].uid, entries["srv"].mode) == (0, 0o755)
    assert "srv/app" in entries or "srv/app" not in made
    assert list(entries) == sorted(entries, key=os.fsencode)
