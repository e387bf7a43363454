"""Gemfile.lock parsing for `imgbuild init`: every source's specs, the direct gems, the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from rails_apps import lockfile

from buildkit.errors import InputError
from buildkit.scaffold import lockfile as lockmod

# A real Bundler 2.5 lockfile's shape: platform variants, nested dependencies, a GIT and a PATH
# source, CHECKSUMS (whose two-space lines are not dependencies).
REAL = """\
GIT
  remote: https://github.com/example/payments.git
  revision: 0123456789abcdef0123456789abcdef01234567
  branch: main
  specs:
    payments (0.3.0)
      faraday (>= 1)

PATH
  remote: engines/admin
  specs:
    admin (0.1.0)
      rails (>= 7)

GEM
  remote: https://rubygems.org/
  specs:
    faraday (2.12.2)
    nokogiri (1.18.2-aarch64-linux-gnu)
      racc (~> 1.4)
    nokogiri (1.18.2-x86_64-linux-gnu)
      racc (~> 1.4)
    pg (1.5.9)
    racc (1.8.1)
    rails (7.2.2.2)

PLATFORMS
  aarch64-linux-gnu
  x86_64-linux-gnu

DEPENDENCIES
  admin!
  payments!
  pg (~> 1.1)
  rails (~> 7.2.2)

CHECKSUMS
  pg (1.5.9) sha256=761efbdf73b66516f0c26fcbe6515dc7500c3f0aa1a1b853feae245433c64fdc

RUBY VERSION
   ruby 3.3.8p144

BUNDLED WITH
   2.5.22
"""


def test_a_real_lockfile(tmp_path: Path) -> None:
    lock = lockmod.parse_text(REAL, tmp_path / "Gemfile.lock")
    assert lock.gems == {"payments", "admin", "faraday", "nokogiri", "pg", "racc", "rails"}
    assert lock.direct == {"admin", "payments", "pg", "rails"}
    assert lock.git_gems == ("payments",)
    assert lock.path_sources == ("engines/admin",)
    assert lock.platforms == ("aarch64-linux-gnu", "x86_64-linux-gnu")
    assert lock.ruby == "3.3.8p144"
    assert lock.bundler == "2.5.22"
    assert lockmod.installs_on_linux(lock)


def test_dependencies_of_gems_are_not_gems_of_their_own(tmp_path: Path) -> None:
    """Six-space lines are a spec's requirements: `faraday (>= 1)` under payments is not a spec."""
    text = REAL.replace("    faraday (2.12.2)\n", "")
    lock = lockmod.parse_text(text, tmp_path / "Gemfile.lock")
    assert "faraday" not in lock.gems
    assert "racc" in lock.gems


def test_windows_line_endings(tmp_path: Path) -> None:
    lock = lockmod.parse_text(REAL.replace("\n", "\r\n"), tmp_path / "Gemfile.lock")
    assert "pg" in lock.gems
    assert lock.ruby == "3.3.8p144"


@pytest.mark.parametrize(
    ("platforms", "installs"),
    [
        (["arm64-darwin-23"], False),
        (["arm64-darwin-23", "x86_64-darwin-22"], False),
        (["arm64-darwin-23", "x86_64-linux"], True),
        (["ruby"], True),
        ([], True),
    ],
)
def test_installs_on_linux(tmp_path: Path, platforms: list[str], installs: bool) -> None:
    lock = lockmod.parse_text(lockfile(["pg"], platforms=platforms), tmp_path / "Gemfile.lock")
    assert lockmod.installs_on_linux(lock) is installs


def test_missing_lockfile_says_to_run_bundle_lock(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Gemfile\.lock is missing.*bundle lock"):
        lockmod.parse(tmp_path / "Gemfile.lock")


def test_a_file_without_gems_is_not_a_lockfile(tmp_path: Path) -> None:
    path = tmp_path / "Gemfile.lock"
    path.write_text("source 'https://rubygems.org'\ngem 'rails'\n")
    with pytest.raises(InputError, match="lists no gems"):
        lockmod.parse(path)
