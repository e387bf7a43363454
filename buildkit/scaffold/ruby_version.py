"""Which Ruby the app runs: `.ruby-version`, else the Gemfile's `ruby`, else Gemfile.lock's.

imgbuild compiles one exact MRI release, so only a full version (3.3.8, 3.4.0-preview2) will do.
A partial one (`3.3` in `.ruby-version`, `~> 3.3` in the Gemfile) does not choose a release by
itself; a full version from a later source that matches it is taken, anything else is an error
that says to write the version into `.ruby-version`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from buildkit.errors import InputError

_FULL = re.compile(r"^(\d+\.\d+\.\d+)(?:[-.]?(preview|rc)(\d+))?$")
_PARTIAL = re.compile(r"^\d+(?:\.\d+)?$")
# `ruby "3.3.8"`, `ruby '3.3.8', engine: ...`, `ruby("3.3.8")`, `ruby file: ".ruby-version"`
_GEMFILE_RUBY = re.compile(
    r"""^\s*ruby\s*\(?\s*(?:(?P<q>["'])(?P<value>[^"']+)(?P=q)"""
    r"""|file:\s*(?P<fq>["'])(?P<file>[^"']+)(?P=fq))"""
)
_REQUIREMENT = re.compile(r"^(?P<op>~>|>=|<=|!=|=|>|<)?\s*(?P<numbers>[\w.-]+)$")
_LOCK_RUBY = re.compile(r"^(\d+\.\d+\.\d+)(?:\.(preview|rc)(\d+))?(?:p-?\d+)?$")
_OTHER_ENGINES = ("jruby", "truffleruby", "mruby", "rbx", "maglev", "ironruby")


@dataclass(frozen=True, kw_only=True)
class RubyVersion:
    version: str  # as ruby.version takes it: "3.3.8", "3.4.0-preview2"
    source: str  # the file it came from, relative to the app: ".ruby-version"
    written: str  # what that file says: "ruby-3.3.8", 'ruby "3.3.8"', "ruby 3.3.8p144"


def detect(root: Path, lock_ruby: str | None) -> RubyVersion:
    """The app's Ruby version; InputError when none is full, or two sources disagree."""
    partials: list[RubyVersion] = []
    found: list[RubyVersion] = []
    for candidate in (_from_ruby_version(root), _from_gemfile(root), _from_lock(lock_ruby)):
        if candidate is not None:
            (found if _FULL.match(candidate.version) else partials).append(candidate)
    if found:
        chosen = found[0]
        _check_bundler_agrees(chosen, found)
        for partial in partials:
            if not _within(chosen.version, partial.version):
                raise InputError(
                    f"{root / partial.source} says Ruby {partial.written!r} but {chosen.source} "
                    f"says {chosen.version}; write the full version you run into .ruby-version"
                )
        return chosen
    if partials:
        partial = partials[0]
        raise InputError(
            f"{root / partial.source} gives only a partial Ruby version ({partial.written!r}) "
            "and nothing names a full one; imgbuild compiles an exact release: put it in "
            f"{root / '.ruby-version'}, e.g. `echo 3.3.8 > .ruby-version`"
        )
    raise InputError(
        f'no Ruby version in {root}: no .ruby-version, no `ruby "x.y.z"` in the Gemfile, no '
        "RUBY VERSION in Gemfile.lock; add a .ruby-version with the full version, e.g. "
        "`echo 3.3.8 > .ruby-version`"
    )


def normalize(text: str, where: Path) -> str:
    """`ruby-3.3.8` -> 3.3.8, `3.4.0-preview2` kept, `3.3` kept (partial); other engines fail."""
    value = text.strip().split("@", 1)[0]  # rvm's ruby-3.3.8@gemset
    if value.split("-", 1)[0] in _OTHER_ENGINES:
        raise InputError(
            f"{where} names {value!r}; imgbuild builds MRI (CRuby) only: name an MRI version, "
            "e.g. 3.3.8"
        )
    value = value.removeprefix("ruby-")
    full = _FULL.match(value)
    if full:
        return full[1] + (f"-{full[2]}{full[3]}" if full[2] else "")
    return value


def _from_ruby_version(root: Path, name: str = ".ruby-version") -> RubyVersion | None:
    path = root / name
    lines = _lines(path)
    if name == ".tool-versions":  # asdf/mise: one `tool version` per line
        lines = [w[1] for w in map(str.split, lines) if len(w) > 1 and w[0] == "ruby"]
    if not lines:
        return None
    return RubyVersion(version=normalize(lines[0], path), source=name, written=lines[0])


def _from_gemfile(root: Path) -> RubyVersion | None:
    try:
        text = (root / "Gemfile").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = next(filter(None, map(_GEMFILE_RUBY.match, text.splitlines())), None)
    if match is None:
        return None
    if match["file"]:
        name = match["file"].removeprefix("./")
        # .ruby-version was read first (absent: nothing more to learn); only a file beside it.
        if name == ".ruby-version" or "/" in name:
            return None
        return _from_ruby_version(root, name)
    version = _requirement_version(match["value"].strip(), root / "Gemfile")
    if version is None:
        return None
    return RubyVersion(version=version, source="Gemfile", written=match.string.strip())


def _requirement_version(requirement: str, where: Path) -> str | None:
    """`3.3.8` and `= 3.3.8` name a release; `~> 3.3.0` narrows to 3.3; `>= 3.2` says nothing."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        return None
    operator, numbers = match["op"], match["numbers"]
    if operator in (None, "="):
        return normalize(numbers, where)
    if operator == "~>" and "." in numbers:  # `~> 3.3.0` is any 3.3.x, `~> 3.3` any 3.x
        return numbers.rsplit(".", 1)[0]
    return None


def _from_lock(lock_ruby: str | None) -> RubyVersion | None:
    if not lock_ruby:
        return None
    match = _LOCK_RUBY.match(lock_ruby)
    if not match:
        return None
    version = match[1] + (f"-{match[2]}{match[3]}" if match[2] else "")
    return RubyVersion(version=version, source="Gemfile.lock", written=f"ruby {lock_ruby}")


def _lines(path: Path) -> list[str]:
    """The file's lines that are neither blank nor comments, stripped; [] when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and line.strip()[0] != "#"]


def _within(full: str, partial: str) -> bool:
    """3.3.8 is within 3.3 and 3; 3.2.2 is not within 3.3."""
    if not _PARTIAL.match(partial):
        return False
    return full == partial or full.startswith(partial + ".")


def _check_bundler_agrees(chosen: RubyVersion, found: list[RubyVersion]) -> None:
    """An exact `ruby "x.y.z"` in the Gemfile is enforced by Bundler: `bundle install` under any
    other Ruby fails, so a different .ruby-version would give a config that cannot build."""
    for other in found:
        if other.source == "Gemfile" and other.version != chosen.version:
            raise InputError(
                f"{chosen.source} says Ruby {chosen.version} but the Gemfile says "
                f"{other.written!r}, which Bundler enforces; make them the same (or write "
                '`ruby file: ".ruby-version"` in the Gemfile)'
            )
