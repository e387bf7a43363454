"""Gemfile.lock's shape, checked before its digest goes into the base layer's key.

A file that is no lockfile (a merge conflict, a cut-short copy, random bytes) would otherwise pass
`plan` as "base: build" and fail minutes later inside bundler. This reads it as Bundler writes it
(bundler/lockfile_generator.rb) and says, with the line, the first thing Bundler would not write:

    GEM, GIT, PATH, PLUGIN SOURCE   `  key: value` options (GIT and PATH need `remote:`), then
                                    `  specs:`, gems at 4 spaces `name (version[-platform])`, each
                                    one's dependencies at 6 spaces `name[ (requirements)]`
    PLATFORMS                       at least one, 2 spaces
    DEPENDENCIES                    2 spaces, `name[ (requirements)][!]`
    CHECKSUMS (Bundler 2.5+)        2 spaces, `name (version[-platform])[ algorithm=digest]`
    RUBY VERSION, BUNDLED WITH      one indented line; BUNDLED WITH's is a version

PLATFORMS and DEPENDENCIES are always there and the last line ends with a line break: a file
without them was cut short. Sections a later Bundler may add (upper-case names) are let through,
as Bundler lets them through; \\r\\n line ends are read as Bundler reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from buildkit.errors import InputError

_REDO = "run `bundle lock` (or restore the file from git)"
_RESOLVE = "resolve the conflict and run `bundle lock`"
_CONFLICT = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")  # git's markers, diff3's too
_SOURCES = ("GEM", "GIT", "PATH", "PLUGIN SOURCE")
_ONCE = ("PLATFORMS", "DEPENDENCIES", "CHECKSUMS", "RUBY VERSION", "BUNDLED WITH")
_REQUIRED = ("PLATFORMS", "DEPENDENCIES")
_FUTURE = re.compile(r"[A-Z][A-Z0-9_ ]*")

_NAME = r"[A-Za-z0-9._-]+"
_VERSION = r"[0-9]+(?:\.[0-9A-Za-z]+)*"
_FULL_NAME = rf"{_NAME} \({_VERSION}(?:-[A-Za-z0-9_.-]+)?\)"  # name (version[-platform])
_REQUIREMENTS = r"(?: \([^()]+\))?"
_SHAPES = {  # (section, indent) -> what a line there looks like, in words and as a pattern
    ("source", 2): ("`key: value` or `specs:`", re.compile(r"[A-Za-z_]+:(?: .*)?")),
    ("source", 4): ("a gem, `name (version)`", re.compile(_FULL_NAME)),
    ("source", 6): ("a dependency, `name[ (requirements)]`", re.compile(_NAME + _REQUIREMENTS)),
    ("PLATFORMS", 2): ("a platform", re.compile(r"[A-Za-z0-9_.-]+")),
    ("DEPENDENCIES", 2): ("`name[ (requirements)][!]`", re.compile(_NAME + _REQUIREMENTS + "!?")),
    ("CHECKSUMS", 2): ("`name (version) sha256=…`", re.compile(_FULL_NAME + r"(?: \S+)?")),
}  # fmt: skip
_INDENTS = {  # the sections whose lines _SHAPES knows, and their indents in words
    "source": "options and `specs:` at 2 spaces, gems at 4, their dependencies at 6",
    **dict.fromkeys(("PLATFORMS", "DEPENDENCIES", "CHECKSUMS"), "one entry a line at 2 spaces"),
}


def check(path: Path) -> None:
    """Raise InputError (one line: the file, the line, what is wrong and what to do) unless path
    has the shape of a Gemfile.lock."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror}); {_REDO}") from None
    found = problem(data)
    if found is not None:
        line, what = found
        raise InputError(f"{path} line {line}: {what}")


def problem(data: bytes) -> tuple[int, str] | None:
    """(line, what is wrong and what to do) of the first thing Bundler would not have written,
    or None for a lockfile."""
    if not data.strip():
        return 1, f"the file is empty; {_REDO}"
    lines = data.split(b"\n")
    cut = lines[-1] != b""  # the last line has no line break
    if not cut:
        lines.pop()
    reader = _Reader()
    for number, raw in enumerate(lines, 1):
        # A cut-short last line is only read for what no cut could make (not UTF-8, not a
        # section): "    rai" is a gem's line cut short, not a malformed gem.
        found = reader.read(number, raw, partial=cut and number == len(lines))
        if found is not None:
            return found
    if cut:
        return len(lines), f"the file ends in the middle of a line (cut short?); {_REDO}"
    return reader.finish(len(lines))


@dataclass
class _Section:
    name: str
    line: int
    remote: bool = False  # sources: a `remote:` option
    specs: bool = False  # sources: `  specs:` seen
    gem: bool = False  # sources: a gem above, whose dependencies may follow
    entries: int = 0

    @property
    def kind(self) -> str:
        return "source" if self.name in _SOURCES else self.name


class _Reader:
    """The lines in order: which section each is in, and what that section has had so far."""

    def __init__(self) -> None:
        self.section: _Section | None = None
        self.seen: set[str] = set()

    def read(self, number: int, raw: bytes, *, partial: bool = False) -> tuple[int, str] | None:
        try:
            text = raw.decode("utf-8").rstrip()
        except UnicodeDecodeError as exc:
            byte = raw[exc.start]
            return number, f"not UTF-8 text (byte 0x{byte:02x}): is it a Gemfile.lock? {_REDO}"
        if text.startswith(_CONFLICT):
            return number, f"merge conflict marker {text[:7]}; {_RESOLVE}"
        if not text or (partial and text[0].isspace()):
            return None
        if not text[0].isspace():
            return self._header(number, text)
        what = self._entry(text)
        return None if what is None else (number, what)

    def finish(self, last: int) -> tuple[int, str] | None:
        """After the last line: the open section complete, the required sections there."""
        if self.section is not None and (found := _incomplete(self.section)) is not None:
            return found
        for name in _REQUIRED:
            if name not in self.seen:
                return last, f"no {name} section: the file ends before it (cut short?); {_REDO}"
        return None

    def _header(self, number: int, text: str) -> tuple[int, str] | None:
        if self.section is not None and (found := _incomplete(self.section)) is not None:
            return found
        if text in _ONCE and text in self.seen:
            return number, f"a second {text} section (a merge gone wrong?); {_RESOLVE}"
        if text not in _SOURCES + _ONCE and not _FUTURE.fullmatch(text):
            return number, f"{text[:60]!r} is not a lockfile section (GEM, PLATFORMS, ...); {_REDO}"
        self.seen.add(text)
        self.section = _Section(text, number)
        return None

    def _entry(self, text: str) -> str | None:
        section = self.section
        if section is None:
            return f"an indented line before any section: is it a Gemfile.lock? {_REDO}"
        body = text.lstrip(" ")
        indent = len(text) - len(body)
        if body[0].isspace():
            return f"indented with a tab; Bundler indents with spaces: {_REDO}"
        if section.kind in ("RUBY VERSION", "BUNDLED WITH"):
            return _environment(section, body)
        if section.kind not in _INDENTS:
            return None  # a later Bundler's section: its lines are its own
        return _shaped(section, indent, body)


def _shaped(section: _Section, indent: int, body: str) -> str | None:
    """A line of a source, PLATFORMS, DEPENDENCIES or CHECKSUMS: at its indent, in its shape."""
    if (section.kind, indent) not in _SHAPES:
        return f"indented {indent} spaces in {section.name} ({_INDENTS[section.kind]}); {_REDO}"
    what, shape = _SHAPES[(section.kind, indent)]
    if not shape.fullmatch(body):
        return f"{body[:60]!r} in {section.name} is not {what}; {_REDO}"
    section.entries += 1
    return _source_entry(section, indent, body) if section.kind == "source" else None


def _source_entry(section: _Section, indent: int, body: str) -> str | None:
    """Keep track of `remote:`, `specs:` and gems; a gem before `specs:` or a dependency
    without a gem above it is out of place."""
    if indent == 2:
        key, _, value = body.partition(":")
        section.specs = section.specs or key == "specs"
        section.remote = section.remote or (key == "remote" and bool(value.strip()))
    elif not section.specs:
        return f"a gem before `  specs:` in {section.name}; {_REDO}"
    elif indent == 4:
        section.gem = True
    elif not section.gem:
        return f"a dependency (6 spaces) with no gem (4 spaces) above it; {_REDO}"
    return None


def _environment(section: _Section, body: str) -> str | None:
    """RUBY VERSION and BUNDLED WITH: one line each; BUNDLED WITH's a version."""
    section.entries += 1
    if section.entries > 1:
        return f"a second line in {section.name}; {_REDO}"
    if section.name == "BUNDLED WITH" and not re.fullmatch(_VERSION, body):
        return f"{body[:60]!r} under BUNDLED WITH is not a version; {_REDO}"
    return None


def _incomplete(section: _Section) -> tuple[int, str] | None:
    """What a section lacks when the next one (or the end of the file) comes, at its header."""
    what = None
    if section.kind == "source" and not section.specs:
        what = f"{section.name} has no `  specs:` line (cut short?)"
    elif section.name in ("GIT", "PATH") and not section.remote:
        what = f"{section.name} has no `  remote:`"
    elif section.name in ("PLATFORMS", "RUBY VERSION", "BUNDLED WITH") and not section.entries:
        what = f"{section.name} is empty (cut short?)"
    return None if what is None else (section.line, f"{what}; {_REDO}")
