"""Gemfile.lock, read the way Bundler writes it: the gems, the direct dependencies, the sources.

A lockfile is sections at column 0 (`GEM`, `PATH`, `GIT`, `PLATFORMS`, `DEPENDENCIES`,
`RUBY VERSION`, `BUNDLED WITH`, `CHECKSUMS`). A source section lists its gems under `  specs:` at
four spaces, `name (version[-platform])`, each followed by its own dependencies at six spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from buildkit.errors import InputError

_SOURCES = ("GEM", "PATH", "GIT")
_SPEC = re.compile(r"^    (?P<name>[A-Za-z0-9_.-]+) \((?P<version>[^)]+)\)$")
_DEPENDENCY = re.compile(r"^  (?P<name>[A-Za-z0-9_.-]+)(?:!| \(|$)")
_REMOTE = re.compile(r"^  remote: (?P<remote>.+)$")
_RUBY = re.compile(r"^   ruby (?P<version>\S+)")


@dataclass(frozen=True, kw_only=True)
class Lockfile:
    """What imgbuild init needs from a Gemfile.lock."""

    path: Path
    gems: frozenset[str]  # every spec of every source, platform variants merged
    direct: frozenset[str]  # DEPENDENCIES: the gems the Gemfile names
    platforms: tuple[str, ...]
    git_gems: tuple[str, ...]  # gems from GIT sources: bundle install clones them
    path_sources: tuple[str, ...]  # PATH remotes: directories inside (or outside) the app
    ruby: str | None  # RUBY VERSION as written, e.g. "3.3.8p144"
    bundler: str | None  # BUNDLED WITH


def parse(path: Path) -> Lockfile:
    """The lockfile at path; a missing or unreadable file is an InputError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{path} is missing; imgbuild reads the app's gems from it and the base layer "
            "installs them from it: run `bundle lock`, commit it, and run imgbuild init again"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc})") from None
    return parse_text(text, path)


def parse_text(text: str, path: Path) -> Lockfile:
    gems: set[str] = set()
    direct: set[str] = set()
    platforms: list[str] = []
    git_gems: list[str] = []
    path_sources: list[str] = []
    ruby = bundler = None
    section = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line and not line[0].isspace():
            section = line.strip()
            continue
        if section in _SOURCES:
            if spec := _SPEC.match(line):
                gems.add(spec["name"])
                if section == "GIT":
                    git_gems.append(spec["name"])
            elif (remote := _REMOTE.match(line)) and section == "PATH":
                path_sources.append(remote["remote"].strip())
        elif section == "PLATFORMS" and line.strip():
            platforms.append(line.strip())
        elif section == "DEPENDENCIES" and (dependency := _DEPENDENCY.match(line)):
            direct.add(dependency["name"])
        elif section == "RUBY VERSION" and (version := _RUBY.match(line)):
            ruby = version["version"]
        elif section == "BUNDLED WITH" and line.strip():
            bundler = line.strip()
    if not gems and not direct:
        raise InputError(
            f"{path} lists no gems; is it a Gemfile.lock? Run `bundle lock` and run imgbuild "
            "init again"
        )
    return Lockfile(
        path=path,
        gems=frozenset(gems),
        direct=frozenset(direct),
        platforms=tuple(platforms),
        git_gems=tuple(sorted(set(git_gems))),
        path_sources=tuple(path_sources),
        ruby=ruby,
        bundler=bundler,
    )


def installs_on_linux(lock: Lockfile) -> bool:
    """Whether `bundle install` on Linux accepts this lockfile: it must list the generic `ruby`
    platform or a Linux one (a lockfile made on a Mac may list only arm64-darwin-23)."""
    if not lock.platforms:
        return True  # old lockfiles without the section install anywhere
    return any(p == "ruby" or "linux" in p for p in lock.platforms)
