"""moby/patternmatcher's Pattern.compile: a .dockerignore pattern as a string compare or a
Go regexp (translated for Python by goregexp), after the filepath.Match check moby's New makes.
"""

from __future__ import annotations

import os
import re

from buildkit.source import goregexp

__all__ = [
    "EXACT",
    "PREFIX",
    "REGEXP",
    "SUFFIX",
    "check_syntax",
    "compile_pattern",
    "go_regexp",
    "shown",
]

#: moby's match types: a string compare (==, HasPrefix, HasSuffix) or a regexp.
EXACT, PREFIX, SUFFIX, REGEXP = range(4)

# moby escapes only these: it means to escape `|{}` too, but its bitmap (QuoteMeta's, shrunk
# to 8 bytes) loses every character from `@` up. So `|`, `{`, `}`, `^`, `[`, `]` and `\` escapes
# reach Go's regexp verbatim (in a pattern that is a regexp: one with `*?[]\`).
_REGEX_ESCAPES = frozenset(".+()$")


def shown(text: str) -> str:
    """A pattern or path quoted for a message: as written (`\\pL`, not `\\\\pL`) when printable."""
    return f"'{text}'" if text.isprintable() else repr(text)


def compile_pattern(pattern: str) -> tuple[int, str, bool]:
    """(match type, a Python regexp for fullmatch equivalent to moby's match, whether it uses
    Go's `\\p` classes) of a cleaned pattern without its `!`; ValueError when Go or moby reject
    it, or when it cannot be translated faithfully."""
    check_syntax(pattern)
    kind, go = go_regexp(pattern)
    if kind != REGEXP:
        return kind, _plain_source(kind, pattern), False
    try:
        translation = goregexp.translate(go)
    except goregexp.Untranslatable as exc:
        raise ValueError(f"ignore pattern {shown(pattern)}: {exc}") from None
    except goregexp.GoRegexpError as exc:
        raise ValueError(
            f"bad ignore pattern {shown(pattern)}: BuildKit's Go regexp {go} is invalid ({exc})"
        ) from None
    return kind, translation.source, translation.unicode


def _plain_source(kind: int, pattern: str) -> str:
    """A regexp (for fullmatch) equivalent to moby's string compare for `kind`."""
    if kind == EXACT:
        return re.escape(pattern)
    if kind == PREFIX:  # strings.HasPrefix, so `.` must cross newlines too
        return "(?s:" + re.escape(pattern[:-2]) + ".*)"
    # HasSuffix of the pattern minus its first two bytes (not characters: see go_regexp),
    # or `**/foo` matching plain `foo`.
    suffix = os.fsdecode(os.fsencode(pattern)[2:])
    if suffix.startswith("/"):
        return "(?s:(?:.*/)?" + re.escape(suffix[1:]) + ")"
    return "(?s:.*" + re.escape(suffix) + ")"


def go_regexp(pattern: str) -> tuple[int, str]:
    """moby's Pattern.compile, character by character: (match type, its Go regexp).

    It reads the pattern with text/scanner, which skips a leading BOM and reads an invalid
    UTF-8 byte (a surrogate here) as U+FFFD; the string compares use the pattern as it is."""
    chars = pattern.removeprefix("\ufeff")
    out = ["^"]
    kind = EXACT
    i, n = 0, len(chars)
    while i < n:
        ch, start = chars[i], i
        i += 1
        if ch == "*" and i < n and chars[i] == "*":
            i += 2 if chars[i + 1 : i + 2] == "/" else 1  # `**/` is treated as `**`
            if i < n:
                out.append("(.*/)?")
                kind = REGEXP
            elif kind == EXACT:
                kind = PREFIX
            else:
                out.append(".*")
                kind = REGEXP
            if start == 0:
                kind = SUFFIX
        elif ch in "*?":
            out.append("[^/]*" if ch == "*" else "[^/]")
            kind = REGEXP
        elif ch in _REGEX_ESCAPES:
            out.append("\\" + ch)
        elif ch == "\\":  # check_syntax guarantees a following character
            out.append("\\" + _scanned(chars[i]))
            i += 1
            kind = REGEXP
        else:
            out.append(_scanned(ch))
            kind = REGEXP if ch in "[]" else kind
    return kind, "".join(out) + "$"


def _scanned(ch: str) -> str:
    """A character as text/scanner hands it over: an undecodable byte becomes U+FFFD."""
    return "\ufffd" if "\ud800" <= ch <= "\udfff" else ch


def check_syntax(pattern: str) -> None:
    """Reject what Go's filepath.Match rejects (moby validates every pattern with it)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "\\":
            if i + 1 >= n:
                raise ValueError(f"bad ignore pattern {shown(pattern)}: trailing backslash")
            i += 2
        elif pattern[i] == "[":
            i = _check_class(pattern, i + 1)
        else:
            i += 1


def _check_class(pattern: str, i: int) -> int:
    """Validate a `[...]` class starting after the `[`; return the index after its `]`."""
    if pattern[i : i + 1] == "^":
        i += 1
    ranges = 0
    while not (pattern[i : i + 1] == "]" and ranges):
        i = _check_class_char(pattern, i)
        if pattern[i] == "-":
            i = _check_class_char(pattern, i + 1)
        ranges += 1
    return i + 1


def _check_class_char(pattern: str, i: int) -> int:
    """Go's getEsc: one (possibly escaped) class character that must not end the pattern."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise ValueError(f"bad ignore pattern {shown(pattern)}: malformed character class")
    if pattern[i] == "\\":
        i += 1
    if i + 1 >= len(pattern):
        raise ValueError(f"bad ignore pattern {shown(pattern)}: unterminated character class")
    if "\ud800" <= pattern[i] <= "\udfff":  # a byte that is not UTF-8 (getEsc decodes it)
        raise ValueError(f"bad ignore pattern {shown(pattern)}: malformed character class")
    return i + 1
