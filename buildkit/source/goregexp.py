"""Go regexp syntax (RE2, as Go's `regexp.Compile` reads it) translated into Python's `re`.

moby/patternmatcher turns a .dockerignore pattern into a Go regexp, escaping only `.+()$`:
classes, `^`, `|`, `{` and backslash escapes reach Go's parser verbatim, and Python reads many
of them otherwise (`[[:alpha:]]`, `\\d` on non-ASCII, `\\pL`, `\\z`, `\\Q…\\E`, `\\12`, `^{2}`). So
this parses the Go syntax itself and writes an equivalent Python regexp, every class spelled
out (goclasses) and every literal escaped. What Go rejects raises GoRegexpError in Go's words;
so does what imgbuild cannot translate faithfully (Unicode scripts such as `\\p{Greek}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from buildkit.source import goclasses
from buildkit.source.goclasses import Ranges

__all__ = ["GoRegexpError", "Translation", "Untranslatable", "translate"]

_C_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_OCTAL = tuple("01234567")
_WORD = "[0-9A-Za-z_]"  # Go's \b is ASCII too
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(?:(,)(0|[1-9][0-9]*)?)?\}")  # no leading zeros
_MAX_REPEAT = 1000
_QUANTIFIERS = {"*": (0, None), "+": (1, None), "?": (0, 1)}

# One piece of output: its Python source and its kind: "char" (consumes a rune), "rep" (a
# repeated piece), "begin"/"end" (\A, \z: anchors), "assert" (\b, \B).
_Atom = tuple[str, str]


class GoRegexpError(ValueError):
    """A regexp Go's parser rejects; the message is Go's."""


class Untranslatable(GoRegexpError):
    """A regexp Go accepts but imgbuild cannot translate faithfully."""


@dataclass(frozen=True)
class Translation:
    source: str  # a Python regexp: fullmatch(source, s) iff Go's MatchString(s)
    unicode: bool  # uses \p or \P: Python's Unicode tables stand in for Go's


def translate(go: str) -> Translation:
    """Python's equivalent of the Go regexp `go`, for fullmatch.

    Go's MatchString searches: each top-level alternative is padded with `.*` where it is not
    anchored (moby's `^` anchors only the first alternative, its `$` only the last, and an
    unterminated `\\Q` takes the `$` as a literal)."""
    parser = _Parser(go)
    alternatives = parser.alternatives(depth=0)
    if len(alternatives) == 1:
        return Translation(_padded(alternatives[0]), parser.unicode)
    source = "|".join(f"(?:{_padded(atoms)})" for atoms in alternatives)
    return Translation(source, parser.unicode)


def _padded(atoms: list[_Atom]) -> str:
    head, tail = "(?s:.*?)", "(?s:.*)"
    if atoms and atoms[0][1] == "begin":
        atoms, head = atoms[1:], ""
    if atoms and atoms[-1][1] == "end":
        atoms, tail = atoms[:-1], ""
    return head + "".join(source for source, _ in atoms) + tail


class _Parser:
    """Go's regexp/syntax parser with the Perl flags regexp.Compile uses, emitting Python."""

    def __init__(self, go: str) -> None:
        self.s = go
        self.i = 0
        self.unicode = False

    def alternatives(self, depth: int) -> list[list[_Atom]]:
        """Parse up to the end (or, in a group, its `)`): each alternative's atoms."""
        s = self.s
        alternatives: list[list[_Atom]] = [[]]
        repeated = False  # the last token was a repetition: Go forbids stacking another
        while self.i < len(s):
            ch, atoms = s[self.i], alternatives[-1]
            if ch == ")":
                if depth:
                    return alternatives
                raise GoRegexpError(f"unexpected ): `{s}`")
            if ch in _QUANTIFIERS or (ch == "{" and _REPEAT.match(s, self.i)):
                self._repeat(atoms, repeated)
                repeated = True
                continue
            repeated = False
            if ch == "|":
                alternatives.append([])
                self.i += 1
            elif ch == "(":
                atoms.append(self._group())
            else:
                atoms.extend(self._atoms())
        if depth:
            raise GoRegexpError(f"missing closing ): `{s}`")
        return alternatives

    def _group(self) -> _Atom:
        if self.s.startswith("(?", self.i):
            raise Untranslatable("imgbuild does not translate `(?` groups")
        self.i += 1
        inner = self.alternatives(depth=1)
        self.i += 1  # the `)`
        body = "|".join("".join(source for source, _ in atoms) for atoms in inner)
        return f"(?:{body})", "char"

    def _repeat(self, atoms: list[_Atom], repeated: bool) -> None:
        """Apply `*`, `+`, `?` or `{m,n}` (and a lazy `?`) to the last atom, as Go's repeat."""
        s, start = self.s, self.i
        if s[start] == "{":
            found = _REPEAT.match(s, start)
            assert found is not None  # the caller checked
            lo = int(found[1])
            hi = lo if not found[2] else int(found[3]) if found[3] else None
            end = found.end()
            if lo > _MAX_REPEAT or (hi is not None and (hi > _MAX_REPEAT or lo > hi)):
                raise GoRegexpError(f"invalid repeat count: `{s[start:end]}`")
        else:
            (lo, hi), end = _QUANTIFIERS[s[start]], start + 1
        lazy = "?" if s[end : end + 1] == "?" else ""
        op = s[start : end + len(lazy)]
        if repeated:
            raise GoRegexpError(f"invalid nested repetition operator: `{op}`")
        if not atoms:
            raise GoRegexpError(f"missing argument to repetition operator: `{op}`")
        source, kind = atoms[-1]
        if kind in ("char", "rep"):
            # Go allows repeating a repetition when something empty came between (`a*\Q\E*`).
            base = f"(?:{source})" if kind == "rep" else source
            atoms[-1] = (base + _quantifier(lo, hi) + lazy, "rep")
        elif lo == 0:  # an assertion that may occur zero times always holds (Go: `^{0}`)
            atoms[-1] = ("(?:)", "char")
        self.i = end + len(lazy)

    def _atoms(self) -> list[_Atom]:
        s, i = self.s, self.i
        ch = s[i]
        if ch == "[":
            return [(self._class(), "char")]
        if ch == "\\":
            return self._backslash()
        self.i += 1
        if ch == "^":  # Go's OneLine flag: `^` and `$` are the text's ends, never a line's
            return [(r"\A", "begin")]
        if ch == "$":
            return [(r"\Z", "end")]
        if ch == ".":
            return [(".", "char")]  # Go's `.` skips only \n, as Python's does
        return [(goclasses.literal(ord(ch)), "char")]

    def _backslash(self) -> list[_Atom]:
        s, i = self.s, self.i
        op = s[i + 1 : i + 2]
        if op in ("A", "z", "b", "B"):
            self.i += 2
            if op in ("A", "z"):
                return [(r"\A", "begin")] if op == "A" else [(r"\Z", "end")]
            return [(_boundary(op == "b"), "assert")]
        if op == "C":
            raise GoRegexpError(r"invalid escape sequence: `\C`")
        if op == "Q":  # literal text up to `\E` or the end
            end = s.find(r"\E", i + 2)
            self.i = len(s) if end < 0 else end + 2
            text = s[i + 2 :] if end < 0 else s[i + 2 : end]
            return [(goclasses.literal(ord(c)), "char") for c in text]
        ranges = self._class_escape()
        if ranges is not None:
            return [(goclasses.class_source(ranges, negated=False), "char")]
        rune, self.i = _escape(s, i)
        return [(goclasses.literal(rune), "char")]

    def _class_escape(self) -> Ranges | None:
        """`\\pX`, `\\p{Name}`, `\\PX` or a Perl class (`\\d`...) at self.i: its ranges."""
        s, i = self.s, self.i
        op = s[i + 1 : i + 2]
        if op in ("p", "P"):
            ranges, self.i, name = _unicode_class(s, i)
            self.unicode |= name != "Any"
            return ranges
        if op.lower() in goclasses.PERL:
            self.i += 2
            ranges = goclasses.PERL[op.lower()]
            return goclasses.complement(ranges) if op.isupper() else ranges
        return None

    def _class(self) -> str:
        """A `[...]` class (Go's parseClass) from self.i at its `[`, as Python source."""
        s, start = self.s, self.i
        self.i += 1
        negated = s[self.i : self.i + 1] == "^"
        self.i += negated
        ranges: list[tuple[int, int]] = []
        first = True  # a `]` first in the class is itself
        while first or s[self.i : self.i + 1] != "]":
            if self.i >= len(s):
                raise GoRegexpError(f"missing closing ]: `{s[start:]}`")
            first = False
            ranges.extend(self._class_item(start))
        self.i += 1
        return goclasses.class_source(tuple(ranges), negated)

    def _class_item(self, start: int) -> Ranges:
        """One item of a class: `[:name:]`, a class escape, a rune or a range of runes."""
        s, i = self.s, self.i
        if s.startswith("[:", i) and len(s) - i > 2 and (end := s.find(":]", i + 2)) >= 0:
            self.i = end + 2
            return _posix(s[i : end + 2])
        if s[i] == "\\" and (group := self._class_escape()) is not None:
            return group
        lo, self.i = _class_char(s, i, start)
        hi = lo
        if s[self.i : self.i + 1] == "-" and s[self.i + 1 : self.i + 2] not in ("]", ""):
            hi, self.i = _class_char(s, self.i + 1, start)
            if hi < lo:
                raise GoRegexpError(f"invalid character class range: `{s[i : self.i]}`")
        return ((lo, hi),)


def _quantifier(lo: int, hi: int | None) -> str:
    if (lo, hi) in ((0, None), (1, None), (0, 1)):
        return {(0, None): "*", (1, None): "+", (0, 1): "?"}[(lo, hi)]
    if hi == lo:
        return f"{{{lo}}}"
    return f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"


def _class_char(s: str, i: int, start: int) -> tuple[int, int]:
    """Go's parseClassChar: one rune, escaped or not, and the index after it."""
    if i >= len(s):
        raise GoRegexpError(f"missing closing ]: `{s[start:]}`")
    if s[i] == "\\":
        return _escape(s, i)
    return ord(s[i]), i + 1


def _escape(s: str, i: int) -> tuple[int, int]:
    """Go's parseEscape at `s[i] == '\\\\'`: the rune it stands for and the index after it."""
    c = s[i + 1 : i + 2]
    if not c:
        raise GoRegexpError("trailing backslash at end of expression")
    j = i + 2
    if c.isascii() and not c.isalnum():
        return ord(c), j  # escaped punctuation is itself
    if c == "0" or (c in _OCTAL and s[j : j + 1] in _OCTAL):  # a lone \1 is a backreference
        value = int(c)
        for _ in range(2):  # up to two more octal digits
            if s[j : j + 1] not in _OCTAL:
                break
            value, j = value * 8 + int(s[j]), j + 1
        return value, j
    if c == "x" and re.fullmatch("[0-9A-Fa-f]{2}", s[j : j + 2]):
        return int(s[j : j + 2], 16), j + 2
    hexa = re.match(r"\{([0-9A-Fa-f]+)\}", s[j:]) if c == "x" else None
    if hexa and int(hexa[1], 16) <= goclasses.MAX_RUNE:
        return int(hexa[1], 16), j + hexa.end()
    if c in _C_ESCAPES:
        return _C_ESCAPES[c], j
    raise GoRegexpError(f"invalid escape sequence: `\\{c}`")


def _unicode_class(s: str, i: int) -> tuple[Ranges, int, str]:
    """Go's parseUnicodeClass at `\\p` or `\\P`: its ranges, the index after it, its name."""
    negated = s[i + 1] == "P"
    if s[i + 2 : i + 3] != "{":
        name, end = s[i + 2 : i + 3], i + 3  # a one-rune name
    else:
        close = s.find("}", i)
        if close < 0:
            raise GoRegexpError(f"invalid character class range: `{s[i:]}`")
        name, end = s[i + 3 : close], close + 1
    if name.startswith("^"):  # `\p{^Greek}` is `\P{Greek}`
        negated, name = not negated, name[1:]
    ranges = goclasses.category(name)
    if ranges is None and s[i + 2 : i + 3] != "{":  # no script has a one-letter name
        raise GoRegexpError(f"invalid character class range: `{s[i:end]}`")
    if ranges is None:
        raise Untranslatable(
            f"imgbuild cannot match `{s[i:end]}` as BuildKit does: it knows Go's Unicode "
            "general categories (L, Lu, Nd...) and Any, not scripts or other names (list the "
            "characters instead, e.g. [α-ω])"
        )
    return (goclasses.complement(ranges) if negated else ranges), end, name


def _posix(name: str) -> Ranges:
    """A `[:alpha:]`-style class (Go's parseNamedClass); `[:^alpha:]` negates it."""
    word = name[2:-2]
    ranges = goclasses.POSIX.get(word.removeprefix("^"))
    if ranges is None:
        raise GoRegexpError(f"invalid character class range: `{name}`")
    return goclasses.complement(ranges) if word.startswith("^") else ranges


def _boundary(at: bool) -> str:
    """Go's `\\b` (`at`) or `\\B`: between an ASCII word character and anything else."""
    if at:
        return f"(?:(?<!{_WORD})(?={_WORD})|(?<={_WORD})(?!{_WORD}))"
    return f"(?:(?<!{_WORD})(?!{_WORD})|(?<={_WORD})(?={_WORD}))"
