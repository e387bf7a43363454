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
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.errors import InputError

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
# moby escapes only these; `^`, `[` and `]` reach the regexp verbatim, as in Go.
_REGEX_ESCAPES = frozenset(".+()|{}$")
_EXACT, _PREFIX, _SUFFIX, _REGEXP = range(4)

Matcher = Callable[[str], object]


def read_dockerignore(path: Path) -> list[str]:
    """Patterns of an ignore file, normalized like Docker's ReadAll; a missing file gives []."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    # surrogateescape keeps non-UTF-8 bytes comparable with os.scandir's names.
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
    patterns = []
    for raw in text.split("\n"):  # not splitlines(): Go splits on \n only
        line = raw.removesuffix("\r")
        if line.startswith("#"):  # checked before trimming, so " #x" is a pattern
            continue
        if pattern := _normalize(line):
            patterns.append(pattern)
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
    patterns = [*DEFAULT_PATTERNS, *read_dockerignore(ignore_file), *extra]
    try:
        return IgnoreRules(patterns)
    except ValueError as exc:
        raise InputError(f"{ignore_file}: {exc}; fix or remove that line") from exc


@dataclass(frozen=True)
class _Pattern:
    exclusion: bool
    match: Matcher = field(repr=False)
    regex: str = field(repr=False)  # equivalent regexp source, for the combined fast path
    # Per path component, a regexp when the component is plain enough to reason about
    # (literals, `*`, `?`), else None; used only to prove a subtree can be pruned.
    parts: tuple[re.Pattern[str] | None, ...] = field(repr=False)


@dataclass(frozen=True, init=False)
class IgnoreRules:
    """A compiled pattern list. Immutable; caches per-directory results as paths are judged."""

    patterns: tuple[str, ...]
    _compiled: tuple[_Pattern, ...] = field(repr=False, compare=False)
    _any: Matcher = field(repr=False, compare=False)
    _dir_results: dict[str, tuple[bool, ...]] = field(repr=False, compare=False)

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        """Normalize and compile `patterns`; raise ValueError on one Docker would reject."""
        kept = [p for p in map(_normalize, patterns) if p]
        compiled = tuple(map(_compile, kept))
        object.__setattr__(self, "patterns", tuple(kept))
        object.__setattr__(self, "_compiled", compiled)
        any_source = "|".join(f"(?:{p.regex})" for p in compiled) or "(?!)"
        object.__setattr__(self, "_any", _regex(any_source).fullmatch)
        object.__setattr__(self, "_dir_results", {})

    def is_ignored(self, relpath: str) -> bool:
        """Whether BuildKit leaves `relpath` (relative to the context, `/`-separated) out."""
        path = _clean_relpath(relpath)
        if not path:
            return False  # Docker never excludes the context root itself
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
    _check_syntax(pattern)
    parts = tuple(map(_component_regex, pattern.split("/")))
    kind, regex = _regex_source(pattern)
    # Exact patterns (`.git`, `log`) are the most common; a string compare beats a regexp.
    match = pattern.__eq__ if kind == _EXACT else _regex(regex, pattern).fullmatch
    return _Pattern(exclusion, match, regex, parts)


def _regex_source(pattern: str) -> tuple[int, str]:
    """moby's match type for `pattern` and a regexp (for fullmatch) equivalent to it."""
    kind, body = _translate(pattern)
    if kind == _EXACT:
        return kind, re.escape(pattern)
    if kind == _PREFIX:  # strings.HasPrefix, so `.` must cross newlines too
        return kind, "(?s:" + re.escape(pattern[:-2]) + ".*)"
    if kind == _SUFFIX:  # HasSuffix, or `**/foo` matching plain `foo`
        suffix = pattern[2:]
        if suffix.startswith("/"):
            return kind, "(?s:(?:.*/)?" + re.escape(suffix[1:]) + ")"
        return kind, "(?s:.*" + re.escape(suffix) + ")"
    return kind, body


def _regex(source: str, pattern: str = "") -> re.Pattern[str]:
    """Compile a translated pattern, turning a regexp error into ValueError."""
    try:
        with warnings.catch_warnings():  # Go accepts `[[`, Python only warns about it
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(source)
    except re.error as exc:
        raise ValueError(f"bad ignore pattern {pattern!r}: {exc}") from exc


def _translate(pattern: str) -> tuple[int, str]:
    """moby's Pattern.compile, character by character: (match type, regexp body)."""
    out: list[str] = []
    kind = _EXACT
    i, n = 0, len(pattern)
    while i < n:
        ch, start = pattern[i], i
        i += 1
        if ch == "*" and i < n and pattern[i] == "*":
            i += 2 if pattern[i + 1 : i + 2] == "/" else 1  # `**/` is treated as `**`
            if i < n:
                out.append("(?:.*/)?")
                kind = _REGEXP
            elif kind == _EXACT:
                kind = _PREFIX
            else:
                out.append(".*")
                kind = _REGEXP
            if start == 0:
                kind = _SUFFIX
        elif ch in "*?":
            out.append("[^/]*" if ch == "*" else "[^/]")
            kind = _REGEXP
        elif ch == "\\":  # _check_syntax guarantees a following character
            out.append("\\" + pattern[i])
            i += 1
            kind = _REGEXP
        elif ch in _REGEX_ESCAPES:
            out.append("\\" + ch)
        else:
            out.append(ch)
            kind = _REGEXP if ch in "[]" else kind
    return kind, "".join(out)


def _check_syntax(pattern: str) -> None:
    """Reject what Go's filepath.Match rejects (moby validates every pattern with it)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "\\":
            if i + 1 >= n:
                raise ValueError(f"bad ignore pattern {pattern!r}: trailing backslash")
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
        raise ValueError(f"bad ignore pattern {pattern!r}: malformed character class")
    if pattern[i] == "\\":
        i += 1
    if i + 1 >= len(pattern):
        raise ValueError(f"bad ignore pattern {pattern!r}: unterminated character class")
    return i + 1


def _component_regex(component: str) -> re.Pattern[str] | None:
    """A regexp for one plain component, or None when it may span `/` or act as an anchor."""
    if "**" in component or any(ch in component for ch in "[]\\^"):
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
