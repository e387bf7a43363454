"""Go regexp character classes as explicit code point ranges, written as Python classes.

Go's `\\d`, `\\s`, `\\w`, `\\b` and POSIX classes are ASCII-only; Python's are Unicode. Go's
`\\pL`-style classes come from Go's Unicode tables; Python's `re` has none, so they are built
from `unicodedata` (once, lazily). Names reach Go as bytes: an invalid UTF-8 byte reads as
U+FFFD, and os.fsdecode gives each such byte a lone surrogate; so every class here holds the
surrogates exactly when it holds U+FFFD.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["PERL", "POSIX", "Ranges", "category", "class_source", "complement", "unassigned"]

MAX_RUNE = 0x10FFFF
FFFD = 0xFFFD
_SURROGATES = (0xD800, 0xDFFF)
Ranges = tuple[tuple[int, int], ...]

_ASCII_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
#: Go's perl_groups.go.
PERL: dict[str, Ranges] = {
    "d": ((0x30, 0x39),),
    "s": ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)),  # no \v, unlike Python's \s
    "w": _ASCII_WORD,
}
#: Go's posixGroup, `[:alpha:]` and friends (`[:^alpha:]` negates).
POSIX: dict[str, Ranges] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": ((0x30, 0x39),),
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _ASCII_WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
# Go's unicode.Categories (every Go version has these; Go 1.25 adds aliases, LC, Cn...).
_MINORS = {"C": "cfos", "L": "lmotu", "M": "cen", "N": "dlo", "P": "cdefios", "S": "ckmo"}
_CATEGORIES = frozenset(
    major + minor for major, minors in {**_MINORS, "Z": "lps"}.items() for minor in ("", *minors)
)


def category(name: str) -> Ranges | None:
    """Go's table for `\\p{name}`: a general category or Any; None for other names."""
    if name == "Any":
        return ((0, MAX_RUNE),)
    if name not in _CATEGORIES:
        return None
    tables = _category_tables()
    if len(name) == 2:
        return tables[name]
    return tuple(sorted(r for key, ranges in tables.items() if key[0] == name for r in ranges))


@functools.cache
def _category_tables() -> dict[str, Ranges]:
    """The two-letter general categories as ranges, from Python's tables: one pass, ~0.3 s,
    only for a pattern that uses `\\p`. Unassigned code points (Cn) are in no category, as in
    Go; "unknown" holds them, bar the noncharacters (which no Unicode version assigns)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    cat = unicodedata.category

    def kind(rune: int) -> str:
        found = cat(chr(rune))
        if found != "Cn":
            return found
        return "" if 0xFDD0 <= rune <= 0xFDEF or rune & 0xFFFE == 0xFFFE else "unknown"

    run_start, run_kind = 0, kind(0)
    for rune in range(1, MAX_RUNE + 2):
        this = kind(rune) if rune <= MAX_RUNE else "end"
        if this != run_kind:
            spans.setdefault(run_kind, []).append((run_start, rune - 1))
            run_start, run_kind = rune, this
    spans.pop("", None)
    return {name: tuple(found) for name, found in spans.items()}


@functools.cache
def unassigned() -> re.Pattern[str]:
    """Code points Python's Unicode tables leave unassigned (bar the noncharacters).

    Go's tables may have them (Go 1.21+ has Unicode 15.0, Python 3.11 14.0): a `\\p` class
    cannot judge a name holding one as BuildKit would."""
    return re.compile(class_source(_category_tables()["unknown"], negated=False))


def complement(ranges: Ranges) -> Ranges:
    """Every rune not in `ranges` (as Go's appendNegatedClass), over 0..U+10FFFF."""
    out, nxt = [], 0
    for lo, hi in sorted(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = max(nxt, hi + 1)
    if nxt <= MAX_RUNE:
        out.append((nxt, MAX_RUNE))
    return tuple(out)


def literal(rune: int) -> str:
    """One rune as a Python regexp: escaped, or U+FFFD's class (see the module doc)."""
    if rune == FFFD or _SURROGATES[0] <= rune <= _SURROGATES[1]:
        return class_source(((FFFD, FFFD),), negated=False)
    return re.escape(chr(rune))


def class_source(ranges: Ranges, negated: bool) -> str:
    """A Python class for `ranges` (negated: their complement), each rune spelled safely."""
    merged = _normalize(ranges)
    if not merged:  # a class that matches nothing (or, negated, anything): still repeatable
        merged, negated = [(0, MAX_RUNE)], not negated
    items = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in merged)
    return f"[{'^' if negated else ''}{items}]"


def _char(rune: int) -> str:
    """A rune inside a class: as itself when it cannot be read as class syntax, else escaped."""
    char = chr(rune)
    if char.isascii() and (char.isalnum() or char in "/_."):
        return char
    if rune < 0x100:
        return f"\\x{rune:02x}"
    return f"\\u{rune:04x}" if rune < 0x10000 else f"\\U{rune:08x}"


def _normalize(ranges: Ranges) -> list[tuple[int, int]]:
    """Sorted, merged ranges; the surrogates are in exactly when U+FFFD is."""
    has_fffd = any(lo <= FFFD <= hi for lo, hi in ranges)
    spans = _without(ranges, _SURROGATES)
    if has_fffd:
        spans.append(_SURROGATES)
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _without(ranges: Ranges, cut: tuple[int, int]) -> list[tuple[int, int]]:
    out = []
    for lo, hi in ranges:
        if lo < cut[0]:
            out.append((lo, min(hi, cut[0] - 1)))
        if hi > cut[1]:
            out.append((max(lo, cut[1] + 1), hi))
    return out
