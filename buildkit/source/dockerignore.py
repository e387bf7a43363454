""".dockerignore semantics, exactly as BuildKit applies them when it collects a build context.

Patterns are read like moby/patternmatcher's `ignorefile.ReadAll`, compiled like its
`Pattern.compile`, and a path is judged like tonistiigi/fsutil's walker judges it: with
`MatchesUsingParentResults`, each directory handing its per-pattern results down to its
children. That is what makes `log` exclude `log/a/b`, and what lets the last matching
pattern win (`!log/.keep` after `log` re-includes the file).
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.errors import InputError
from buildkit.source import goclasses, mobypattern
from buildkit.source.mobypattern import shown

__all__ = ["DEFAULT_PATTERNS", "IgnoreRules", "read_dockerignore", "render", "rules_for_context"]

# Never worth shipping to the daemon: VCS data, secrets, logs and scratch files. `node_modules`
# is deliberately absent: some apps build their assets from it inside the image.
DEFAULT_PATTERNS: tuple[str, ...] = (
    ".git",
    ".env*",
    "config/master.key",
    "config/credentials/*.key",
    "**/*.pem",
    "log",
    "tmp",
    "imgbuild-baseline.json",  # the size gate's ratchet: changing it must not rebuild the app
)

# Go's unicode.IsSpace; str.strip() would also eat \x1c-\x1f, which Go keeps in a pattern.
_GO_SPACE = (
    " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
Matcher = Callable[[str], object]


def read_dockerignore(path: Path) -> list[str]:
    """Patterns of an ignore file, normalized like Docker's ReadAll; a missing file gives []."""
    return [pattern for _, pattern in _read_lines(path)]


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, pattern) of each pattern of an ignore file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    # surrogateescape keeps non-UTF-8 bytes comparable with os.scandir's names.
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
    patterns = []
    for number, raw in enumerate(text.split("\n"), 1):  # not splitlines(): Go splits on \n only
        line = raw.removesuffix("\r")
        if line.startswith("#"):  # checked before trimming, so " #x" is a pattern
            continue
        if pattern := _normalize(line):
            patterns.append((number, pattern))
    return patterns


def render(patterns: Iterable[str]) -> str:
    """An ignore file (e.g. `Dockerfile.dockerignore`) holding `patterns`, one per line."""
    lines = []
    for pattern in patterns:
        if "\n" in pattern or "\r" in pattern:
            raise ValueError(f"ignore pattern {pattern!r} contains a line break")
        # ReadAll drops lines starting with '#' before trimming; a space keeps the pattern.
        lines.append(f" {pattern}\n" if pattern.startswith("#") else f"{pattern}\n")
    return "".join(lines)


def rules_for_context(context: Path, extra: Sequence[str] = ()) -> IgnoreRules:
    """DEFAULT_PATTERNS, then the context's `.dockerignore`, then `extra`.

    The user's file comes after the defaults so that its `!` lines can re-include a default.
    """
    ignore_file = context / ".dockerignore"
    lines = _read_lines(ignore_file)
    patterns = [*DEFAULT_PATTERNS, *(pattern for _, pattern in lines), *extra]
    origins = [
        *(("",) * len(DEFAULT_PATTERNS)),
        *(f"{ignore_file}:{number}" for number, _ in lines),
        *(("",) * len(extra)),
    ]
    try:
        return IgnoreRules(patterns, origins)
    except ValueError as exc:
        raise InputError(f"{exc}; fix or remove that line") from None


@dataclass(frozen=True)
class _Pattern:
    exclusion: bool
    match: Matcher = field(repr=False)
    regex: str = field(repr=False)  # equivalent regexp source, for the combined fast path
    unicode: bool = field(repr=False)  # uses Go's \p classes (from Python's Unicode tables)
    # Per path component, a regexp when the component is plain enough to reason about
    # (literals, `*`, `?`), else None; used only to prove a subtree can be pruned.
    parts: tuple[re.Pattern[str] | None, ...] = field(repr=False)


@dataclass(frozen=True, init=False)
class IgnoreRules:
    """A compiled pattern list. Immutable; caches per-directory results as paths are judged."""

    patterns: tuple[str, ...]
    _origins: tuple[str, ...] = field(repr=False, compare=False)  # "file:line" or ""
    _compiled: tuple[_Pattern, ...] = field(repr=False, compare=False)
    _unicode: int = field(repr=False, compare=False)  # index of the first `\p` pattern, or -1
    _any: Matcher = field(repr=False, compare=False)
    _dir_results: dict[str, tuple[bool, ...]] = field(repr=False, compare=False)

    def __init__(self, patterns: Iterable[str] = (), origins: Sequence[str] = ()) -> None:
        """Normalize and compile `patterns`; raise ValueError on one Docker would reject.

        `origins[i]` names where `patterns[i]` comes from (`file:line`), for error messages."""
        sources = list(patterns)
        named = [*origins, *("",) * (len(sources) - len(origins))][: len(sources)]
        kept = [(p, where) for p, where in zip(map(_normalize, sources), named, strict=True) if p]
        compiled = []
        for pattern, where in kept:
            try:
                compiled.append(_compile(pattern))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}" if where else str(exc)) from None
        object.__setattr__(self, "patterns", tuple(p for p, _ in kept))
        object.__setattr__(self, "_origins", tuple(where for _, where in kept))
        object.__setattr__(self, "_compiled", tuple(compiled))
        unicode = [i for i, p in enumerate(compiled) if p.unicode]
        object.__setattr__(self, "_unicode", unicode[0] if unicode else -1)
        any_source = "|".join(f"(?:{p.regex})" for p in compiled) or "(?!)"
        object.__setattr__(self, "_any", _regex(any_source).fullmatch)
        object.__setattr__(self, "_dir_results", {})

    def extended(self, more: Iterable[str]) -> IgnoreRules:
        """These rules followed by `more`, keeping where each pattern came from."""
        return IgnoreRules((*self.patterns, *more), self._origins)

    def is_ignored(self, relpath: str) -> bool:
        """Whether BuildKit leaves `relpath` (relative to the context, `/`-separated) out."""
        path = _clean_relpath(relpath)
        if not path:
            return False  # Docker never excludes the context root itself
        self._check_known(path)
        inherited = self._dir_result(path.rpartition("/")[0])
        # The common case, one regexp call: no pattern matches the path or its parents.
        if True not in inherited and not self._any(path):
            return False
        # Equivalent to _judge's verdict: the last pattern that matches the path, or that
        # matched a parent directory, decides (patterns _judge skips cannot change it).
        for pattern, parent_hit in zip(reversed(self._compiled), reversed(inherited), strict=True):
            if parent_hit or pattern.match(path):
                return not pattern.exclusion
        return False

    def may_descend(self, reldir: str) -> bool:
        """False when `reldir` is excluded and no `!` pattern could re-include anything below.

        A walk may then skip the whole subtree. Sound, not complete: a `!` pattern using `**`,
        a `[...]` class, `\\` or `^` is assumed to possibly match below any excluded directory.
        """
        path = _clean_relpath(reldir)
        if not path or not self.is_ignored(path):
            return True
        names = path.split("/")
        return any(_could_match_below(p.parts, names) for p in self._compiled if p.exclusion)

    def _check_known(self, path: str) -> None:
        """Refuse to judge, with a `\\p` pattern, a name holding a code point Python's Unicode
        tables do not know: Go's may (its category decides), so the answer could differ."""
        if self._unicode < 0 or not (unknown := goclasses.unassigned().search(path)):
            return
        where, pattern = self._origins[self._unicode], self.patterns[self._unicode]
        code = f"U+{ord(unknown.group()):04X}"
        raise InputError(
            f"{where or 'ignore pattern'}: {shown(pattern)} cannot judge {shown(path)} as BuildKit "
            f"would: {code} is unknown to this Python's Unicode {unicodedata.unidata_version} "
            "tables; rename it or spell the class out, e.g. [a-z]"
        )

    def _dir_result(self, reldir: str) -> tuple[bool, ...]:
        """Per-pattern results of a directory, computed root-down like fsutil's walker."""
        if not reldir:
            return (False,) * len(self._compiled)
        result = self._dir_results.get(reldir)
        if result is None:
            parent = reldir.rpartition("/")[0]
            result = self._judge(reldir, self._dir_result(parent))[1]
            self._dir_results[reldir] = result
        return result

    def _judge(self, path: str, parent: tuple[bool, ...]) -> tuple[bool, tuple[bool, ...]]:
        """Port of moby's MatchesUsingParentResults: (excluded?, per-pattern results).

        Only directories need the per-pattern results; files take is_ignored's shortcut.
        """
        matched = False
        results = []
        for pattern, parent_matched in zip(self._compiled, parent, strict=True):
            hit = parent_matched
            # Like moby, skip a pattern that cannot change the outcome; its result stays
            # False and is inherited so by children (an observable BuildKit quirk).
            if not hit and pattern.exclusion == matched:
                hit = bool(pattern.match(path))
            results.append(hit)
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(results)


def _normalize(line: str) -> str:
    """One pattern as ReadAll leaves it: trimmed, cleaned, leading `/` dropped, `!` kept."""
    pattern = line.strip(_GO_SPACE)
    if not pattern:
        return ""
    invert = pattern.startswith("!")
    if invert:
        pattern = pattern[1:].strip(_GO_SPACE)
    if pattern:
        pattern = _go_clean(pattern)
        if len(pattern) > 1 and pattern.startswith("/"):
            pattern = pattern[1:]
    return "!" + pattern if invert else pattern


def _go_clean(path: str) -> str:
    """Go's filepath.Clean; normpath differs only in keeping a leading `//`."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _clean_relpath(relpath: str) -> str:
    """Normalize a caller's path cheaply: the common, already-clean case costs one strip."""
    path = relpath.strip("/")
    # Any `.`-before-slash or trailing `.` might be a `.`/`..` component; normpath decides.
    if "//" in path or "./" in path or path.endswith("."):
        path = posixpath.normpath(path).lstrip("/")
    return "" if path == "." else path


def _compile(normalized: str) -> _Pattern:
    """Compile a normalized pattern the way moby's PatternMatcher.New + Pattern.compile do."""
    pattern = _go_clean(normalized)
    exclusion = pattern.startswith("!")
    if exclusion:
        if len(pattern) == 1:
            raise ValueError('illegal exclusion pattern: "!"')
        pattern = pattern[1:]
    kind, regex, unicode = mobypattern.compile_pattern(pattern)
    # A `|` alternative may match at any depth: nothing can be proved about its components.
    plain = kind != mobypattern.REGEXP or "|" not in pattern
    parts = tuple(map(_component_regex, pattern.split("/"))) if plain else (None,)
    # Exact patterns (`.git`, `log`) are the most common; a string compare beats a regexp.
    match = pattern.__eq__ if kind == mobypattern.EXACT else _regex(regex, pattern).fullmatch
    return _Pattern(exclusion, match, regex, unicode, parts)


def _regex(source: str, pattern: str = "") -> re.Pattern[str]:
    """Compile a translated pattern, turning a regexp error into ValueError."""
    try:
        with warnings.catch_warnings():  # Go accepts `[[`, Python only warns about it
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(source)
    except re.error as exc:
        raise ValueError(f"bad ignore pattern {shown(pattern)}: {exc}") from exc


def _component_regex(component: str) -> re.Pattern[str] | None:
    """A regexp for one plain component, or None when it may span `/`, act as an anchor or
    repeat something (`{2}`)."""
    if "**" in component or any(ch in component for ch in "[]\\^{|"):
        return None
    body = "".join(
        "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in component
    )
    return re.compile(body)


def _could_match_below(parts: tuple[re.Pattern[str] | None, ...], names: list[str]) -> bool:
    """Whether a pattern with these components might match some path strictly under `names`."""
    for i, name in enumerate(names):
        if i >= len(parts):
            return False  # all components so far were plain: it only matches shallower paths
        part = parts[i]
        if part is None:
            return True
        if not part.fullmatch(name):
            return False
    return len(parts) > len(names)
