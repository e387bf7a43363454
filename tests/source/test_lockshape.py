"""Gemfile.lock's shape (source/lockshape.py): lockfiles as Bundler writes them pass, and what is
no lockfile (a merge conflict, a cut-short copy, random bytes, ...) names its line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from buildkit.errors import InputError
from buildkit.source import lockshape

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(REPO.glob("examples/*/Gemfile.lock"))
SHAPES = sorted((Path(__file__).parent / "lockfiles").glob("*.lock"))
LOCKFILES = [*EXAMPLES, *SHAPES]

GOOD = """\
GEM
  remote: https://rubygems.org/
  specs:
    rack (3.1.8)
    rack-session (2.1.0)
      rack (>= 3.0.0)

PLATFORMS
  ruby
  x86_64-linux

DEPENDENCIES
  rack (~> 3.1)
  rack-session

BUNDLED WITH
   2.5.22
"""
PLATFORMS_AT = GOOD.index("PLATFORMS")


def line_of(text: str) -> int:
    return GOOD.splitlines().index(text) + 1


@pytest.mark.parametrize("path", LOCKFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_lockfiles_as_bundler_writes_them_pass(path: Path) -> None:
    data = path.read_bytes()
    assert lockshape.problem(data) is None
    assert lockshape.problem(data.replace(b"\n", b"\r\n")) is None  # a Windows checkout
    lockshape.check(path)


def test_the_examples_and_the_shapes_are_all_there() -> None:
    assert len(EXAMPLES) >= 3
    names = {path.name for path in SHAPES}
    assert names == {"bundler1.lock", "checksums.lock", "git-path-platforms.lock"}
    texts = "".join(path.read_text() for path in SHAPES)
    for section in ("\nGIT\n", "\nPATH\n", "\nCHECKSUMS\n", "arm64-darwin", "x86_64-linux"):
        assert section in "\n" + texts, section


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(GOOD.replace("\nBUNDLED WITH\n   2.5.22\n", ""), id="no BUNDLED WITH"),
        pytest.param(GOOD + "\nRUBY VERSION\n   ruby 3.3.8p144\n", id="RUBY VERSION"),
        pytest.param(GOOD + "\nLATER SECTION\n  whatever: it holds\n", id="a later section"),
        pytest.param(GOOD.replace("\n\n", "\n\n  \n\n"), id="blank lines"),
        pytest.param("GEM\n  specs:\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n", id="no gems"),
    ],
)
def test_what_bundler_also_writes_or_reads_passes(text: str) -> None:
    assert lockshape.problem(text.encode()) is None


CONFLICT = GOOD.replace(
    "    rack (3.1.8)\n",
    "<<<<<<< HEAD\n    rack (3.1.8)\n=======\n    rack (3.1.9)\n>>>>>>> main\n",
)
GIT_WITHOUT_REMOTE = "GIT\n  revision: 0a1b2c3\n  specs:\n    pagy (9.3.4)\n\n" + GOOD
BROKEN = [
    ("merge conflict", CONFLICT, 4, "merge conflict marker <<<<<<<; resolve the conflict"),
    ("diff3 base", GOOD.replace("PLATFORMS\n", "||||||| base\nPLATFORMS\n"), 8, "marker |||||||"),
    ("empty", "", 1, "the file is empty"),
    ("blank", "\n  \n\n", 1, "the file is empty"),
    ("a Gemfile", 'source "https://rubygems.org"\n\ngem "rack"\n', 1, "is not a lockfile section"),
    ("cut in a gem", GOOD[: GOOD.index("rack-session") + 6], 5, "ends in the middle of a line"),
    ("cut in a header", GOOD[: PLATFORMS_AT + 4], 8, "ends in the middle of a line"),
    ("cut before PLATFORMS", GOOD[:PLATFORMS_AT], 7, "no PLATFORMS section"),
    ("cut after BUNDLED WITH", GOOD[: GOOD.index("   2.5.22")], 16, "BUNDLED WITH is empty"),
    ("gem at 5 spaces", GOOD.replace("    rack (3", "     rack (3"), 4, "indented 5 spaces in GEM"),
    ("tab", GOOD.replace("    rack (3", "\track (3"), 4, "indented with a tab"),
    ("gem without version", GOOD.replace("rack (3.1.8)", "rack"), 4, "'rack' in GEM is not a gem"),
    ("gem bad version", GOOD.replace("(3.1.8)", "(three)"), 4, "is not a gem, `name (version)`"),
    (
        "orphan dependency",
        GOOD.replace("    rack (3.1.8)\n    rack-session (2.1.0)\n", ""),
        4,
        "a dependency (6 spaces) with no gem (4 spaces) above it",
    ),
    ("gem before specs", GOOD.replace("  specs:\n", ""), 3, "a gem before `  specs:` in GEM"),
    (
        "no specs",
        "GEM\n  remote: https://rubygems.org/\n\n" + GOOD[PLATFORMS_AT:],
        1,
        "no `  specs:`",
    ),
    ("GIT without remote", GIT_WITHOUT_REMOTE, 1, "GIT has no `  remote:`"),
    ("two DEPENDENCIES", GOOD + "\nDEPENDENCIES\n  rack\n", 19, "a second DEPENDENCIES section"),
    ("bad BUNDLED WITH", GOOD.replace("   2.5.22", "   banana"), 17, "'banana' under BUNDLED WITH"),
    ("platform", GOOD.replace("  x86_64-linux", "  x86 64"), 10, "'x86 64' in PLATFORMS"),
    ("unclosed", GOOD.replace("  rack (~> 3.1)", "  rack (~> 3.1"), 13, "in DEPENDENCIES is not"),
    ("no PLATFORMS", GOOD.replace("PLATFORMS\n", "").replace("  ruby\n  x86", "x86"), 8, "'x86"),
    ("empty PLATFORMS", GOOD.replace("  ruby\n  x86_64-linux\n", ""), 8, "PLATFORMS is empty"),
    ("indented first", "  specs:\n" + GOOD, 1, "an indented line before any section"),
    ("latin-1", GOOD.replace("rack-", "räck-").encode("latin-1"), 5, "not UTF-8 text (byte 0xe4)"),
    ("a PNG", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "not UTF-8 text (byte 0x89)"),
]
CUT_SHORT = "the file ends in the middle of a line (cut short?); " + lockshape._REDO


@pytest.mark.parametrize(
    ("text", "line", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_what_is_no_lockfile_names_its_line(text: str | bytes, line: int, words: str) -> None:
    found = lockshape.problem(text.encode() if isinstance(text, str) else text)
    assert found is not None
    assert found[0] == line, found
    assert words in found[1], found
    assert "bundle lock" in found[1]


def test_random_bytes_never_pass() -> None:
    rng = random.Random(19)
    for _ in range(300):
        data = rng.randbytes(rng.randint(1, 2000))
        assert lockshape.problem(data) is not None, data
    for _ in range(300):  # printable text that is still no lockfile
        text = "".join(rng.choice("GEM PLATFORMS\n  ()abc-1.2") for _ in range(rng.randint(1, 300)))
        assert lockshape.problem(text.encode()) is not None, text


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.parent.name in ("hello", "rails")])
def test_every_cut_inside_a_line_or_before_dependencies_is_found(path: Path) -> None:
    data = path.read_bytes()
    dependencies = data.index(b"\nDEPENDENCIES\n") + 1
    for end in range(1, len(data)):
        cut = data[:end]
        found = lockshape.problem(cut)
        if not cut.endswith(b"\n"):
            assert found == (cut.count(b"\n") + 1, CUT_SHORT), end
        elif end <= dependencies:
            assert found is not None, end  # whole lines after it: a lockfile still


def test_check_raises_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "Gemfile.lock"
    path.write_text(CONFLICT)
    with pytest.raises(InputError) as info:
        lockshape.check(path)
    assert info.value.exit_code == 4
    assert info.value.message == (
        f"{path} line 4: merge conflict marker <<<<<<<; resolve the conflict and run `bundle lock`"
    )
    path.unlink()
    path.mkdir()
    with pytest.raises(InputError, match="cannot read it"):
        lockshape.check(path)
