"""moby/patternmatcher's own test tables (patternmatcher_test.go, ignorefile_test.go at
github.com/moby/patternmatcher 5a6d842), ported case for case: the cases, not the code.

Upstream judges a path the way BuildKit's walker does (MatchesUsingParentResults with each
parent's results): IgnoreRules.is_ignored. Left out: `**` and `**/` against `/`, the context
root, which Docker never excludes (and a walker never judges).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.source import mobypattern
from buildkit.source.dockerignore import IgnoreRules, read_dockerignore

# TestMatches: (pattern, path, matches)
MATCHES = [
    ("**", "file", True),
    ("**", "file/", True),
    ("**/", "file", True),  # weird one (upstream's words)
    ("**/", "file/", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**", "dir/file/", True),
    ("**/", "dir/file/", True),
    ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        True,
    ),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),  # upstream: not on Windows
]
WHL = "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"
MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", f"!{WHL}"], WHL, False),
    (["**", "!dist/*.whl"], WHL, False),
]
# matchTests ("stolen from go's filepath Match tests"), through the old Matches, which checks
# a single parent: the same answers as the walker's for these. None: ErrBadPattern.
FILEPATH = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", True),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", None),
    ("[-]", "-", None),
    ("[x-]", "x", None),
    ("[x-]", "-", None),
    ("[x-]", "z", None),
    ("[-x]", "x", None),
    ("[-x]", "-", None),
    ("[-x]", "a", None),
    ("\\", "a", None),
    ("[a-b-c]", "a", None),
    ("[", "a", None),
    ("[^", "a", None),
    ("[^bc", "a", None),
    ("a[", "a", None),
    ("a[", "ab", None),
    ("*x", "xxx", True),
]
EXACT, PREFIX, SUFFIX, REGEXP = (
    mobypattern.EXACT,
    mobypattern.PREFIX,
    mobypattern.SUFFIX,
    mobypattern.REGEXP,
)
# compileTests: (pattern, match type, the Go regexp on Linux)
COMPILE = [
    ("*", REGEXP, "^[^/]*$"),
    ("file*", REGEXP, "^file[^/]*$"),
    ("*file", REGEXP, "^[^/]*file$"),
    ("a*/b", REGEXP, "^a[^/]*/b$"),
    ("**", SUFFIX, ""),
    ("**/**", REGEXP, "^(.*/)?.*$"),
    ("dir/**", PREFIX, ""),
    ("**/dir", SUFFIX, ""),
    ("**/dir2/*", REGEXP, "^(.*/)?dir2/[^/]*$"),
    ("**/dir2/**", REGEXP, "^(.*/)?dir2/.*$"),
    ("**file", SUFFIX, ""),
    ("**/file*txt", REGEXP, "^(.*/)?file[^/]*txt$"),
    ("**/**/*.txt", REGEXP, "^(.*/)?(.*/)?[^/]*\\.txt$"),
    ("a[b-d]e", REGEXP, "^a[b-d]e$"),
    (".*", REGEXP, "^\\.[^/]*$"),
    ("abc.def", EXACT, ""),
    ("abc?def", REGEXP, "^abc[^/]def$"),
    ("**/foo/bar", SUFFIX, ""),
    ("a(b)c/def", EXACT, ""),
    ("a.|)$(}+{bc", EXACT, ""),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", EXACT, ""),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES)
def test_matches(pattern: str, path: str, expected: bool) -> None:
    assert IgnoreRules([pattern]).is_ignored(path) is expected


@pytest.mark.parametrize(("patterns", "path", "expected"), MULTI)
def test_matches_with_several_patterns(patterns: list[str], path: str, expected: bool) -> None:
    assert IgnoreRules(patterns).is_ignored(path) is expected


@pytest.mark.parametrize(("pattern", "path", "expected"), FILEPATH)
def test_filepath_match_cases(pattern: str, path: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="pattern"):
            IgnoreRules([pattern])
    else:
        assert IgnoreRules([pattern]).is_ignored(path) is expected


@pytest.mark.parametrize(("pattern", "kind", "regexp"), COMPILE)
def test_compile(pattern: str, kind: int, regexp: str) -> None:
    found_kind, found = mobypattern.go_regexp(pattern)
    assert found_kind == kind
    if kind == REGEXP:
        assert found == regexp


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*"], "fileutils.go", True),  # TestWildcardMatches
        (["*.go"], "fileutils.go", True),  # TestPatternMatches
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        (["*.go"], ".", False),  # TestExclusionPatternMatchesWholeDirectory
        ([], "/any/path/there", False),  # TestMatchesWithNoPatterns
    ],
)
def test_single_cases(patterns: list[str], path: str, expected: bool) -> None:
    assert IgnoreRules(patterns).is_ignored(path) is expected


@pytest.mark.parametrize("bad", [["!"], ["["], ["[Local-Only]/"]])
def test_bad_patterns(bad: list[str]) -> None:
    """TestSingleExclamationError, TestMatchesWithMalformedPatterns and the regression test of
    moby#52203 (`[Local-Only]/` passes New's check; its regexp, range `l-O`, does not)."""
    with pytest.raises(ValueError, match="pattern"):
        IgnoreRules(bad)


def test_clean_patterns() -> None:
    """TestCleanPatterns*: empty ones dropped, spaces around a `!` pattern trimmed."""
    assert IgnoreRules(["docs", "config", ""]).patterns == ("docs", "config")
    assert IgnoreRules(["docs", "  !docs/README.md"]).patterns == ("docs", "!docs/README.md")
    assert IgnoreRules(["docs", "!docs/README.md  "]).patterns == ("docs", "!docs/README.md")


def test_read_all(tmp_path: Path) -> None:
    """ignorefile's TestReadAll."""
    path = tmp_path / ".dockerignore"
    path.write_text(
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    )
    assert read_dockerignore(path) == [
        "test1",
        "test2",
        "a/file/here",
        "lastfile",
        "!inverted/abs/path",
        "!",
        "!",
    ]
