"""Patterns that reach Go's regexp syntax, judged as BuildKit judges them.

moby/patternmatcher hands a pattern with `*`, `?`, `[`, `]` or `\\` to Go's regexp with only
`.+()$` escaped. Every verdict below was produced by moby/patternmatcher itself (5a6d842, built
with Go 1.19 in a small harness judging each path like fsutil's walker); imgbuild before this
table mismatched or rejected 95 of its 167 verdicts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.errors import InputError
from buildkit.source.dockerignore import IgnoreRules, rules_for_context

# Names that are not UTF-8: Go reads each undecodable byte as U+FFFD (so does text/scanner in
# a pattern); a string compare compares bytes. As the ignore file and os.scandir give them.
BYTES_TABLE = [
    (b"caf\xe9*", b"caf\xe9.rb", True),
    (b"caf\xe9*", b"caf\xff.rb", True),
    (b"caf\xe9*", "caf\ufffd.rb".encode(), True),
    (b"caf\xe9*", "café.rb".encode(), False),
    (b"caf?.rb", b"caf\xe9.rb", True),
    (b"caf?.rb", "café.rb".encode(), True),
    (b"caf\xe9", b"caf\xe9", True),  # exact: compared as bytes
    (b"caf\xe9", b"caf\xff", False),
    (b"\\pS*", b"\xff", True),  # U+FFFD is a symbol
    (b"[^a]", b"\xff", True),
    (b"[\\x{FFFD}]", b"\xff", True),
    (b"[\\x{FFFD}]", "\ufffd".encode(), True),
    (b"[a-\\x{FFFC}]", b"\xff", False),
    ("\ufeff**b".encode(), b"x\xbf**b", True),  # HasSuffix of the pattern's bytes from the 3rd
]

GO_TABLE: list[tuple[str, dict[str, bool]]] = [
    # POSIX classes
    ("[[:alpha:]]*", {"abc": True, "Zx": True, "1abc": False, "éa": False}),
    ("[[:^alpha:]]*", {"1x": True, "ax": False, "é": True}),
    ("[[:digit:]][[:digit:]]", {"42": True, "4a": False, "١٢": False}),
    ("[[:alnum:]_]*.rb", {"a_1.rb": True, "é.rb": False}),
    ("[[:space:]]x", {" x": True, "\tx": True, "\x0bx": True, "\xa0x": False}),
    ("[[:upper:][:digit:]]*", {"A1": True, "a": False}),
    ("[[:punct:]]*", {"-a": True, "a": False, "«a": False}),
    ("[[:xdigit:]]", {"f": True, "g": False}),
    ("[[:word:]]", {"_": True, "-": False}),
    ("[[:ascii:]]", {"~": True, "é": False}),
    ("[[:blank:]]", {" ": True, "\n": False}),
    ("[[:cntrl:]]", {"\x7f": True, " ": False}),
    ("[[:graph:]]", {"~": True, " ": False}),
    ("[[:lower:]]", {"q": True, "Q": False}),
    ("[[:print:]]", {" ": True, "\t": False}),
    ("[x[:digit:]-]", {"x": True, "5": True, "-": True, "y": False}),
    # Perl classes are ASCII in Go
    ("\\d*", {"1x": True, "١x": False}),
    ("\\w\\w", {"ab": True, "éa": False, "a_": True}),
    ("\\s*", {" a": True, "\u2028a": False, "\x0ba": False}),
    ("\\D", {"é": True, "1": False}),
    ("\\W", {"é": True, "a": False}),
    ("\\S", {"\xa0": True, " ": False}),
    ("[\\d\\s]*", {"1 ": True, "١": False}),
    ("[^\\d]", {"١": True, "1": False}),
    ("[\\W]", {"é": True, "a": False}),
    # Unicode classes
    ("\\pL*", {"é": True, "中文": True, "1": False}),
    ("\\PL*", {"1": True, "é": False}),
    ("\\pN", {"١": True, "a": False}),
    ("\\pZ", {"\xa0": True, "a": False}),
    ("\\pP", {"«": True, "a": False}),
    ("\\pS", {"€": True, "a": False}),
    ("\\pC", {"\x01": True, "a": False}),
    ("\\pM", {"́": True, "a": False}),
    ("\\p{Lu}*", {"Éa": True, "éa": False}),
    ("\\p{^Lu}*", {"Éa": False, "éa": True}),
    ("\\P{Ll}*", {"Éa": True, "éa": False}),
    ("\\p{Nd}", {"١": True, "Ⅳ": False}),
    ("\\p{Any}*", {"anything": True, "é": True}),
    ("[\\pL\\d]*", {"é1": True, "-": False}),
    ("[^\\pL]", {"1": True, "é": False}),
    ("\\pL{2}", {"éa": True, "é": False}),
    # anchors and escapes
    ("a*\\z", {"ab": True, "a": True}),
    ("\\Aa*", {"ab": True, "ba": False}),
    ("\\Qa*\\E*", {"a[^/]*x": True, "ab": False}),
    ("\\Qa.b*", {"a\\.b[^/]*$": True, "a\\.b[^/]*$tail": True, "a.bx": False}),
    ("\\x41*", {"Ab": True, "ab": False}),
    ("\\101*", {"Ab": True, "ab": False}),
    ("\\12*", {"\nx": True, "12x": False}),
    ("*\\bx*", {"a x": True, "ax": False, "éx": True}),
    ("a\\B*", {"ab": True, "a-": False}),
    ("\\-\\_\\ *", {"-_ x": True, "-_x": False}),
    # `|`, `{` and `}` reach Go's regexp: moby's escape bitmap misses them
    ("a|b*", {"axyz": True, "zzb": True, "x/ab": True, "c": False}),
    ("*.rb|*.md", {"x.rb.bak": True, "docs/y.md": True, "y.txt": False}),
    ("a{2}*", {"aab": True, "ab": False}),
    ("[0-9]{3}*", {"123x": True, "12x": False}),
    ("[0-9]{2,}", {"12": True, "123": True, "1": False}),
    ("[0-9]{1,2}", {"1": True, "12": True, "123": False}),
    ("{2}*", {"x": True, "{2}": True}),
    ("a{,2}*", {"a{,2}": True, "aa": False}),
    ("a{01}*", {"a{01}x": True, "a": False}),
    ("x{0}y*", {"y": True, "xy": False}),
    ("a|b", {"a|b": True, "a": False}),
    ("{x}*", {"{x}y": True, "x": False}),
    # a leading BOM: text/scanner skips it in the regexp, the string compares keep it
    ("\ufeff*.rb", {"x.rb": True, "\ufeffx.rb": True}),
    ("\ufeffa", {"\ufeffa": True, "a": False}),
    ("\ufeff**b", {"xb": False, "b": False}),  # and see BYTES_TABLE
    # `.` from `**` does not cross a newline
    ("a/**/b*", {"a/x/y/bq": True, "a/x\ny/bq": False}),
]


@pytest.mark.parametrize(("pattern", "verdicts"), GO_TABLE)
def test_judged_as_buildkit_judges(pattern: str, verdicts: dict[str, bool]) -> None:
    rules = IgnoreRules([pattern])
    assert {path: rules.is_ignored(path) for path in verdicts} == verdicts


@pytest.mark.parametrize(("pattern", "path", "expected"), BYTES_TABLE)
def test_bytes_judged_as_buildkit_judges(pattern: bytes, path: bytes, expected: bool) -> None:
    rules = IgnoreRules([pattern.decode("utf-8", "surrogateescape")])
    assert rules.is_ignored(path.decode("utf-8", "surrogateescape")) is expected


# Patterns moby's New accepts and Go's regexp then rejects (so BuildKit fails on them): the
# error Go gives, as the harness printed it.
GO_REJECTS = [
    ("[[:foo:]]*", "invalid character class range: `[:foo:]`"),
    ("\\e*", "invalid escape sequence: `\\e`"),
    ("\\é*", "invalid escape sequence: `\\é`"),
    ("\\1*", "invalid escape sequence: `\\1`"),  # a backreference: Go has none
    ("\\8*", "invalid escape sequence: `\\8`"),
    ("\\C*", "invalid escape sequence: `\\C`"),
    ("[\\b]*", "invalid escape sequence: `\\b`"),
    ("[\\z]", "invalid escape sequence: `\\z`"),
    ("\\pX*", "invalid character class range: `\\pX`"),
    ("\\p{L", "invalid character class range: `\\p{L$`"),
    ("a{1001}*", "invalid repeat count: `{1001}`"),
    ("a*{2}", "invalid nested repetition operator"),
    ("|{2}*", "missing argument to repetition operator: `{2}`"),
    ("[z-a]*", "invalid character class range: `z-a`"),
]


@pytest.mark.parametrize(("pattern", "why"), GO_REJECTS)
def test_what_go_rejects_is_rejected(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match="BuildKit's Go regexp") as caught:
        IgnoreRules([pattern])
    assert why in str(caught.value)


@pytest.mark.parametrize("pattern", ["\\p{Greek}*", "\\p{Han}", "[\\p{Cyrillic}]", "\\P{Latin}"])
def test_scripts_are_refused_not_mismatched(pattern: str) -> None:
    """Go knows Unicode scripts; Python's tables do not: imgbuild says so instead of guessing."""
    with pytest.raises(ValueError, match=r"imgbuild cannot match `\\[pP]\{\w+\}` as BuildKit"):
        IgnoreRules([pattern])


def test_a_bad_line_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    ignore = tmp_path / ".dockerignore"
    ignore.write_text("# docs\nnode_modules\n\n\\p{Greek}*\n")
    with pytest.raises(InputError) as caught:
        rules_for_context(tmp_path)
    message = caught.value.message
    assert message.startswith(f"{ignore}:4: ignore pattern '\\p{{Greek}}*': imgbuild cannot")
    assert message.endswith("; fix or remove that line")
    assert "\n" not in message
    assert caught.value.exit_code == 4
    ignore.write_text("ok\n[[:foo:]]*\n")
    with pytest.raises(InputError, match=r"\.dockerignore:2: bad ignore pattern '\[\[:foo:\]\]\*'"):
        rules_for_context(tmp_path)


def test_a_name_newer_than_pythons_unicode_tables_is_refused(tmp_path: Path) -> None:
    """U+0378 is unassigned in every Unicode version so far; a newer Go (or Python) might
    assign it, so a `\\p` class cannot judge it as BuildKit would."""
    (tmp_path / ".dockerignore").write_text("*.md\n\\pL*\n")
    rules = rules_for_context(tmp_path)
    assert rules.is_ignored("abc")
    assert not rules.is_ignored("1abc")
    with pytest.raises(InputError, match=r"\.dockerignore:2: '\\pL\*' cannot judge 'x/\\u0378'"):
        rules.is_ignored("x/\u0378")
    # Without a `\p` pattern nothing depends on Unicode's categories.
    assert not IgnoreRules(["*.md", "[[:alpha:]]*"]).is_ignored("1\u0378")


def test_rules_extended_keep_where_their_patterns_came_from(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("\\pL*\n")
    rules = rules_for_context(tmp_path).extended(["public/assets"])
    assert rules.is_ignored("public/assets/app.css")
    with pytest.raises(InputError, match=r"\.dockerignore:1: "):
        rules.is_ignored("\u0378")


def test_translation_stays_fast_for_the_common_patterns() -> None:
    """`*` is still one negated class, not the ranges of everything but `/`."""
    compiled = IgnoreRules(["*.rb"])._compiled[0]
    assert compiled.regex == "[^/]*\\.rb"
