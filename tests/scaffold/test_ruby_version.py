"""The Ruby version `imgbuild init` writes: each source, their precedence, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from rails_apps import write

from buildkit.errors import InputError
from buildkit.scaffold import ruby_version


def detect(root: Path, lock_ruby: str | None = None) -> ruby_version.RubyVersion:
    return ruby_version.detect(root, lock_ruby)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.3.8\n", "3.3.8"),
        ("ruby-3.3.8\n", "3.3.8"),
        ("  3.2.2  \n", "3.2.2"),
        ("# managed by rbenv\n3.4.1\n", "3.4.1"),
        ("ruby-3.3.8@shop\n", "3.3.8"),
        ("3.4.0-preview2\n", "3.4.0-preview2"),
        ("3.4.0.rc1\n", "3.4.0-rc1"),
    ],
)
def test_ruby_version_file(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, ".ruby-version", text)
    found = detect(tmp_path)
    assert (found.version, found.source) == (expected, ".ruby-version")


@pytest.mark.parametrize(
    "line",
    [
        'ruby "3.3.8"',
        "ruby '3.3.8'",
        'ruby("3.3.8")',
        'ruby "3.3.8", engine: "ruby"',
        'ruby "= 3.3.8"',
    ],
)
def test_gemfile_ruby(tmp_path: Path, line: str) -> None:
    write(tmp_path, "Gemfile", f'source "https://rubygems.org"\n{line}\ngem "rails"\n')
    found = detect(tmp_path, "3.3.7p123")
    assert (found.version, found.source, found.written) == ("3.3.8", "Gemfile", line)


def test_gemfile_ruby_file_reads_that_file(tmp_path: Path) -> None:
    write(tmp_path, "Gemfile", 'ruby file: ".tool-versions"\n')
    write(tmp_path, ".tool-versions", "nodejs 22.1.0\nruby 3.3.6\n")
    found = detect(tmp_path)
    assert (found.version, found.source) == ("3.3.6", ".tool-versions")


def test_gemfile_ruby_file_ruby_version_without_the_file_falls_through(tmp_path: Path) -> None:
    write(tmp_path, "Gemfile", 'ruby file: ".ruby-version"\n')
    found = detect(tmp_path, "3.3.8p144")
    assert (found.version, found.source) == ("3.3.8", "Gemfile.lock")


@pytest.mark.parametrize(
    ("written", "expected"),
    [("3.3.8p144", "3.3.8"), ("3.2.2p53", "3.2.2"), ("3.4.0.preview2", "3.4.0-preview2")],
)
def test_lockfile_ruby_version(tmp_path: Path, written: str, expected: str) -> None:
    found = detect(tmp_path, written)
    assert (found.version, found.source, found.written) == (
        expected,
        "Gemfile.lock",
        f"ruby {written}",
    )


def test_precedence_ruby_version_over_gemfile_over_lockfile(tmp_path: Path) -> None:
    write(tmp_path, "Gemfile", 'ruby "~> 3.3.0"\n')
    assert detect(tmp_path, "3.3.5p100").source == "Gemfile.lock"
    write(tmp_path, "Gemfile", 'ruby "3.3.7"\n')
    assert detect(tmp_path, "3.3.5p100").version == "3.3.7"
    write(tmp_path, "Gemfile", 'ruby file: ".ruby-version"\n')
    write(tmp_path, ".ruby-version", "3.3.8\n")
    assert (detect(tmp_path, "3.3.5p100").version, detect(tmp_path).source) == (
        "3.3.8",
        ".ruby-version",
    )


def test_a_partial_version_narrows_a_later_full_one(tmp_path: Path) -> None:
    write(tmp_path, ".ruby-version", "3.3\n")
    assert detect(tmp_path, "3.3.8p144").version == "3.3.8"
    with pytest.raises(InputError, match=r"\.ruby-version says Ruby '3\.3' but Gemfile\.lock"):
        detect(tmp_path, "3.2.2p53")


def test_a_pessimistic_gemfile_requirement_narrows_too(tmp_path: Path) -> None:
    write(tmp_path, "Gemfile", 'ruby "~> 3.3.0"\n')
    assert detect(tmp_path, "3.3.8p144").version == "3.3.8"
    with pytest.raises(InputError, match="Gemfile says Ruby"):
        detect(tmp_path, "3.4.1p0")


def test_a_lower_bound_says_nothing(tmp_path: Path) -> None:
    write(tmp_path, "Gemfile", 'ruby ">= 3.1"\n')
    assert detect(tmp_path, "3.4.1p0").version == "3.4.1"


def test_only_a_partial_version_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, ".ruby-version", "3.3\n")
    with pytest.raises(InputError) as info:
        detect(tmp_path)
    message = info.value.message
    assert f"{tmp_path / '.ruby-version'} gives only a partial Ruby version ('3.3')" in message
    assert "echo 3.3.8 > .ruby-version" in message


def test_no_version_anywhere_names_the_three_sources(tmp_path: Path) -> None:
    write(tmp_path, "Gemfile", 'gem "rails"\n')
    with pytest.raises(InputError) as info:
        detect(tmp_path)
    for needle in (
        ".ruby-version",
        "Gemfile",
        "RUBY VERSION in Gemfile.lock",
        "add a .ruby-version",
    ):
        assert needle in info.value.message


@pytest.mark.parametrize("text", ["jruby-9.4.9.0", "truffleruby-24.1.1"])
def test_other_engines_are_refused(tmp_path: Path, text: str) -> None:
    write(tmp_path, ".ruby-version", text + "\n")
    with pytest.raises(InputError, match="MRI"):
        detect(tmp_path, "3.3.8p144")


def test_gemfile_exact_version_must_agree_with_ruby_version(tmp_path: Path) -> None:
    """Bundler enforces the Gemfile's exact `ruby`: a config built on another cannot bundle."""
    write(tmp_path, ".ruby-version", "3.3.8\n")
    write(tmp_path, "Gemfile", 'ruby "3.3.7"\n')
    with pytest.raises(InputError, match=r"\.ruby-version says Ruby 3\.3\.8 but the Gemfile says"):
        detect(tmp_path)
