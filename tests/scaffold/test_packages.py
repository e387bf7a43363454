"""The gem -> Debian packages table and the choice it makes for one lockfile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rails_apps import write

from buildkit.config import schema
from buildkit.scaffold import packages


def select(
    *gems: str,
    direct: tuple[str, ...] | None = None,
    release: str = packages.DEFAULT_RELEASE,
    variant_processor: str | None = None,
    git: bool = False,
) -> packages.Selection:
    return packages.select(
        frozenset(gems),
        frozenset(gems if direct is None else direct),
        release=release,
        variant_processor=variant_processor,
        git=git,
    )


@pytest.mark.parametrize(
    ("gem", "build", "runtime"),
    [
        ("pg", ("libpq-dev",), ("libpq5",)),
        ("mysql2", ("default-libmysqlclient-dev",), ("libmariadb3",)),
        ("sqlite3", ("libsqlite3-dev",), ("libsqlite3-0",)),
        ("nokogiri", ("libxml2-dev", "libxslt1-dev", "zlib1g-dev"), ("libxml2", "libxslt1.1")),
        ("psych", ("libyaml-dev",), ("libyaml-0-2",)),
        ("ruby-vips", (), ("libvips",)),
        ("mini_magick", (), ("imagemagick",)),
        ("rmagick", ("libmagickwand-dev",), ("libmagickwand-6.q16-6",)),
        ("ffi", ("libffi-dev",), ("libffi8",)),
        ("charlock_holmes", ("libicu-dev",), ("libicu72",)),
        ("idn-ruby", ("libidn-dev",), ("libidn12",)),
        ("curb", ("libcurl4-openssl-dev",), ("libcurl4",)),
        ("tiny_tds", ("freetds-dev",), ("freetds-bin",)),
        ("bootsnap", (), ()),
        ("grpc", (), ()),
        ("sassc", (), ()),
    ],
)
def test_one_gem(gem: str, build: tuple[str, ...], runtime: tuple[str, ...]) -> None:
    chosen = select(gem, "rails", "rack")
    assert chosen.build_packages == build
    assert chosen.packages == runtime
    assert [use.gem for use in chosen.uses] == [gem]


def test_gems_without_a_row_bring_nothing() -> None:
    chosen = select("rails", "rack", "zeitwerk")
    assert (chosen.packages, chosen.build_packages, chosen.uses) == ((), (), ())


def test_a_typical_app_sorted_and_deduplicated() -> None:
    chosen = select("pg", "nokogiri", "psych", "ffi", "fiddle", "puma", "bootsnap")
    assert chosen.packages == ("libffi8", "libpq5", "libxml2", "libxslt1.1", "libyaml-0-2")
    assert chosen.build_packages == (
        "libffi-dev",
        "libpq-dev",
        "libssl-dev",
        "libxml2-dev",
        "libxslt1-dev",
        "libyaml-dev",
        "zlib1g-dev",
    )


def test_nokogiri_builds_with_system_libraries() -> None:
    assert select("nokogiri").build_args == {"NOKOGIRI_USE_SYSTEM_LIBRARIES": "1"}
    assert select("pg").build_args == {}


@pytest.mark.parametrize(
    ("gem", "bookworm", "trixie"),
    [
        ("rmagick", "libmagickwand-6.q16-6", "libmagickwand-6.q16-7t64"),
        ("charlock_holmes", "libicu72", "libicu76"),
        ("curb", "libcurl4", "libcurl4t64"),
        ("ethon", "libcurl4", "libcurl4t64"),
        ("pg", "libpq5", "libpq5"),
    ],
)
def test_release_specific_names(gem: str, bookworm: str, trixie: str) -> None:
    assert select(gem, release="bookworm").packages == (bookworm,)
    assert select(gem, release="trixie").packages == (trixie,)


def test_git_sources_need_git_in_the_build_stage() -> None:
    assert select("rails", git=True).build_packages == ("git",)
    assert "git" not in select("rails").build_packages


def test_unsupported_gems_are_flagged_and_bring_nothing() -> None:
    chosen = select("activerecord-oracle_enhanced-adapter", "ruby-oci8")
    assert (chosen.packages, chosen.build_packages) == ((), ())
    assert all(use.unsupported for use in chosen.uses)
    assert len(chosen.uses) == 2


IMAGE_GEMS = ("image_processing", "mini_magick", "ruby-vips", "ffi")


@pytest.mark.parametrize(
    ("processor", "direct", "has_vips", "has_magick"),
    [
        ("vips", ("image_processing",), True, False),
        ("mini_magick", ("image_processing",), False, True),
        (None, ("image_processing",), True, True),  # nothing says: both, as the lockfile has both
        ("vips", ("image_processing", "mini_magick"), True, True),  # the Gemfile names it
    ],
)
def test_image_processing_adds_the_processor_active_storage_uses(
    processor: str | None, direct: tuple[str, ...], has_vips: bool, has_magick: bool
) -> None:
    chosen = select(*IMAGE_GEMS, direct=direct, variant_processor=processor)
    assert ("libvips" in chosen.packages) is has_vips
    assert ("imagemagick" in chosen.packages) is has_magick
    skipped = [use.gem for use in chosen.uses if use.skipped]
    assert len(skipped) == (not has_vips) + (not has_magick)


PROCESSOR = "config.active_storage.variant_processor"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "vips"),  # load_defaults 7.2
        ({"config/application.rb": "config.load_defaults 6.1\n"}, "mini_magick"),
        ({"config/application.rb": "# no defaults\n"}, None),
        ({"config/environments/production.rb": f"{PROCESSOR} = :mini_magick\n"}, "mini_magick"),
        (
            {
                "config/initializers/storage.rb": f"Rails.application.{PROCESSOR} = :vips\n",
                "config/application.rb": "config.load_defaults 6.0\n",
            },
            "vips",
        ),
        (
            {"config/application.rb": f"config.load_defaults 7.1\n# {PROCESSOR} = :mini_magick\n"},
            "vips",
        ),
        ({"config/environments/development.rb": f"{PROCESSOR} = :mini_magick\n"}, "vips"),
    ],
)
def test_variant_processor(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    write(tmp_path, "config/application.rb", "config.load_defaults 7.2\n")
    for name, text in files.items():
        write(tmp_path, name, text)
    assert packages.variant_processor(tmp_path) == expected


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("debian:bookworm-slim", "bookworm"),
        ("debian:trixie-slim", "trixie"),
        ("debian:13", "trixie"),
        ("debian:12.11-slim", "bookworm"),
        ("127.0.0.1:5000/debian:trixie", "trixie"),
        ("127.0.0.1:5000/mirror/debian:bookworm-20250520-slim", "bookworm"),
        ("ubuntu:24.04", None),
        ("127.0.0.1:5013/base", None),  # a registry port is not a release
    ],
)
def test_release_of(image: str, release: str | None) -> None:
    assert packages.release_of(image) == release


def test_default_release_matches_the_configs_default_image() -> None:
    assert packages.release_of(schema.DEFAULT_BASE) == packages.DEFAULT_RELEASE


def test_every_package_name_passes_the_configs_check() -> None:
    """base.packages rejects what is not a Debian package name; the table must never hit that."""
    pattern = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # schema.package_list's, without =version
    names = {"git"}
    for row in packages.TABLE:
        names.update(row.build, row.runtime, row.trixie.values())
    bad = sorted(n for n in names if not pattern.match(n))
    assert not bad


def test_table_has_one_row_per_gem() -> None:
    gems = [row.gem for row in packages.TABLE]
    assert len(gems) == len(set(gems))
    for row in packages.TABLE:
        assert set(row.trixie) <= set(row.runtime), row.gem
