"""Small Rails app trees for the `imgbuild init` tests: just the files init reads.

Test modules here import this one as `rails_apps` (pytest puts the test's directory on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

APPLICATION_RB = """\
require_relative "boot"
require "rails/all"

module Shop
  class Application < Rails::Application
    config.load_defaults {defaults}
  end
end
"""


def lockfile(
    specs: Iterable[str],
    *,
    direct: Iterable[str] | None = None,
    ruby: str | None = "3.3.8p144",
    platforms: Iterable[str] = ("ruby", "x86_64-linux"),
    git: Iterable[str] = (),
    path_gems: Iterable[str] = (),
) -> str:
    """A Gemfile.lock as Bundler writes it; `specs` are "name (version)" or bare names."""
    specs = list(specs)
    lines = ["GEM", "  remote: https://rubygems.org/", "  specs:"]
    for spec in specs:
        lines.append(f"    {spec}" if "(" in spec else f"    {spec} (1.0.0)")
    lines.append("")
    for gem in git:
        lines += [
            "GIT",
            f"  remote: https://github.com/example/{gem}.git",
            "  revision: 0123456789abcdef0123456789abcdef01234567",
            "  specs:",
            f"    {gem} (0.1.0)",
            "",
        ]
    for gem in path_gems:
        lines += ["PATH", f"  remote: engines/{gem}", "  specs:", f"    {gem} (0.1.0)", ""]
    lines += ["PLATFORMS", *(f"  {p}" for p in platforms), ""]
    names = [s.split(" ")[0] for s in specs] if direct is None else list(direct)
    lines += ["DEPENDENCIES", *(f"  {n}" for n in names)]
    lines += [f"  {g}!" for g in [*git, *path_gems]]
    lines.append("")
    if ruby:
        lines += ["RUBY VERSION", f"   ruby {ruby}", ""]
    lines += ["BUNDLED WITH", "   2.5.22", ""]
    return "\n".join(lines)


def rails_app(
    root: Path,
    *,
    gems: Iterable[str] = ("rails", "puma"),
    direct: Iterable[str] | None = None,
    ruby_version: str | None = "3.3.8",
    lock_ruby: str | None = "3.3.8p144",
    gemfile_extra: str = "",
    load_defaults: str = "7.2",
    files: Mapping[str, str] | None = None,
    platforms: Iterable[str] = ("ruby", "x86_64-linux"),
    git: Iterable[str] = (),
    path_gems: Iterable[str] = (),
) -> Path:
    """Write a minimal Rails app at root and return root."""
    root.mkdir(parents=True, exist_ok=True)
    write(root, "Gemfile", 'source "https://rubygems.org"\n' + gemfile_extra)
    lock = lockfile(
        gems, direct=direct, ruby=lock_ruby, platforms=platforms, git=git, path_gems=path_gems
    )
    write(root, "Gemfile.lock", lock)
    write(root, "config/application.rb", APPLICATION_RB.format(defaults=load_defaults))
    if ruby_version is not None:
        write(root, ".ruby-version", ruby_version + "\n")
    for name, text in (files or {}).items():
        write(root, name, text)
    return root


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_init(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m buildkit init ARGS` in cwd."""
    return run_imgbuild(cwd, "init", *args)


def run_imgbuild(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m buildkit ARGS` in cwd, as a user runs it: its own process, no server, none of
    the caller's IMGBUILD_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGBUILD_")}
    env.update({"PYTHONPATH": str(REPO), "IMGBUILD_SERVER": "off"})
    return subprocess.run(
        [sys.executable, "-m", "buildkit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
