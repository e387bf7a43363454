"""Which Debian packages a Rails app's gems need: the table, and the choice for one lockfile.

One row per gem, modelled on what rubys/dockerfile-rails adds for the same gems: `build` goes to
`base.build_packages` (the gem-compile stage, which always has build-essential and pkg-config),
`runtime` to `base.packages` (the final image). Names are Debian's, valid on bookworm (12) and
trixie (13) unless `trixie` gives that release's name (the t64 transition renamed some
libraries). docs/init.md shows this table; tests/scaffold/test_docs.py checks they agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.engine import reference
from buildkit.errors import InvalidReferenceError

RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = "bookworm"  # debian:bookworm-slim, config.schema.DEFAULT_BASE


@dataclass(frozen=True, kw_only=True)
class GemPackages:
    gem: str
    build: tuple[str, ...] = ()
    runtime: tuple[str, ...] = ()
    trixie: Mapping[str, str] = field(default_factory=dict)  # bookworm name -> trixie name
    build_args: Mapping[str, str] = field(default_factory=dict)  # base.build_args it needs
    optional: str = ""  # run-time packages some apps want, and what for (not added)
    note: str = ""
    unsupported: bool = False  # no Debian package can satisfy it: init says so loudly

    def runtime_for(self, release: str) -> tuple[str, ...]:
        if release != "trixie":
            return self.runtime
        return tuple(self.trixie.get(name, name) for name in self.runtime)


_SSL = "OpenSSL headers; the library itself is in the ruby image (Ruby's openssl links it)"
_COMPILES = "C extension: the build stage's compilers are enough"

TABLE: tuple[GemPackages, ...] = (
    # Databases
    GemPackages(
        gem="pg",
        build=("libpq-dev",),
        runtime=("libpq5",),
        optional="`postgresql-client` (psql) for `rails dbconsole` or a db/structure.sql",
    ),
    GemPackages(
        gem="mysql2",
        build=("default-libmysqlclient-dev",),
        runtime=("libmariadb3",),
        optional="`default-mysql-client-core` for `rails dbconsole` or a db/structure.sql",
    ),
    GemPackages(gem="trilogy", build=("libssl-dev",), note=_SSL),
    GemPackages(
        gem="sqlite3",
        build=("libsqlite3-dev",),
        runtime=("libsqlite3-0",),
        optional="`sqlite3` (the CLI) for `rails dbconsole`",
        note="sqlite3 >= 2 compiles its bundled SQLite by default; the -dev package serves "
        "1.x and system-library builds",
    ),
    GemPackages(gem="tiny_tds", build=("freetds-dev",), runtime=("freetds-bin",)),
    GemPackages(
        gem="ruby-oci8",
        note="Oracle Instant Client is not a Debian package: install it in your own "
        "`base.dockerfile`",
        unsupported=True,
    ),
    GemPackages(
        gem="activerecord-oracle_enhanced-adapter",
        note="needs ruby-oci8 and Oracle Instant Client, which is not a Debian package: install "
        "it in your own `base.dockerfile`",
        unsupported=True,
    ),
    # XML, YAML, FFI
    GemPackages(
        gem="nokogiri",
        build=("libxml2-dev", "libxslt1-dev", "zlib1g-dev"),
        runtime=("libxml2", "libxslt1.1"),
        build_args={"NOKOGIRI_USE_SYSTEM_LIBRARIES": "1"},
        note="compiled against Debian's libxml2 and libxslt instead of copies of its own: they "
        "get Debian's security updates, and Debian's nokogiri source has no copies (its "
        "system-library build checks zlib too). A precompiled x86_64-linux nokogiri in "
        "Gemfile.lock installs as it is",
    ),
    GemPackages(gem="libxml-ruby", build=("libxml2-dev",), runtime=("libxml2",)),
    GemPackages(gem="psych", build=("libyaml-dev",), runtime=("libyaml-0-2",)),
    GemPackages(gem="ffi", build=("libffi-dev",), runtime=("libffi8",)),
    GemPackages(gem="fiddle", build=("libffi-dev",), runtime=("libffi8",)),
    # Images
    GemPackages(
        gem="ruby-vips",
        runtime=("libvips",),
        note="loads libvips with ffi at run time; `libvips` is the name bookworm's libvips42 "
        "and trixie's libvips42t64 both provide",
    ),
    GemPackages(gem="mini_magick", runtime=("imagemagick",), note="runs ImageMagick's commands"),
    GemPackages(
        gem="image_processing",
        note="nothing itself: it uses ruby-vips or mini_magick, and its lockfile entry pulls in "
        "both; init adds the packages of the one Active Storage uses "
        "(`config.active_storage.variant_processor`, else :vips from `load_defaults 7.0`, "
        ":mini_magick before), unless the Gemfile names the other itself",
    ),
    GemPackages(
        gem="rmagick",
        build=("libmagickwand-dev",),
        runtime=("libmagickwand-6.q16-6",),
        trixie={"libmagickwand-6.q16-6": "libmagickwand-6.q16-7t64"},
    ),
    # Text, network
    GemPackages(
        gem="charlock_holmes",
        build=("libicu-dev",),
        runtime=("libicu72",),
        trixie={"libicu72": "libicu76"},
    ),
    GemPackages(gem="idn-ruby", build=("libidn-dev",), runtime=("libidn12",)),
    GemPackages(
        gem="curb",
        build=("libcurl4-openssl-dev",),
        runtime=("libcurl4",),
        trixie={"libcurl4": "libcurl4t64"},
    ),
    GemPackages(
        gem="ethon",
        runtime=("libcurl4",),
        trixie={"libcurl4": "libcurl4t64"},
        note="typhoeus's libcurl binding, loaded with ffi at run time",
    ),
    GemPackages(
        gem="puma",
        build=("libssl-dev",),
        note="OpenSSL headers for puma's SSL listener (`ssl_bind`): without them puma compiles "
        "without SSL; the library itself is in the ruby image",
    ),
    GemPackages(gem="eventmachine", build=("libssl-dev",), note=_SSL),
    GemPackages(gem="openssl", build=("libssl-dev",), note=_SSL),
    GemPackages(
        gem="mimemagic",
        build=("shared-mime-info",),
        runtime=("shared-mime-info",),
        note="reads freedesktop.org.xml when it is installed and at run time",
    ),
    GemPackages(gem="rugged", build=("cmake",), note="compiles its bundled libgit2 with CMake"),
    # C extensions that need nothing more than the compilers
    GemPackages(gem="bootsnap", note=_COMPILES),
    GemPackages(gem="bcrypt", note=_COMPILES),
    GemPackages(gem="msgpack", note=_COMPILES),
    GemPackages(gem="nio4r", note=_COMPILES),
    GemPackages(gem="websocket-driver", note=_COMPILES),
    GemPackages(
        gem="sassc", note="compiles libsass with g++ (in build-essential): slow, nothing more"
    ),
    GemPackages(
        gem="grpc",
        note="compiles a large C++ core (minutes) unless Gemfile.lock has its precompiled "
        "x86_64-linux variant; nothing more",
    ),
    GemPackages(
        gem="google-protobuf",
        note="compiles with the build stage's compilers unless Gemfile.lock has a precompiled "
        "Linux variant",
    ),
)

BY_GEM: dict[str, GemPackages] = {row.gem: row for row in TABLE}
GIT_NOTE = "gems from git sources: bundle install clones them"
_IMAGE_GEMS = {"vips": "ruby-vips", "mini_magick": "mini_magick"}
_VARIANT = re.compile(r"variant_processor\s*=\s*:(\w+)")
_LOAD_DEFAULTS = re.compile(r"^\s*config\.load_defaults\s+(\d+)(?:\.\d+)?", re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class GemUse:
    """One table row that applies to this app, as it applies (release names, reason)."""

    gem: str
    build: tuple[str, ...]
    runtime: tuple[str, ...]
    optional: str = ""
    note: str = ""
    unsupported: bool = False
    skipped: bool = False  # its packages are left out on purpose (note says why)


@dataclass(frozen=True, kw_only=True)
class Selection:
    packages: tuple[str, ...]  # base.packages
    build_packages: tuple[str, ...]  # base.build_packages
    build_args: dict[str, str]  # base.build_args
    uses: tuple[GemUse, ...]  # why: one per gem that brought something (or a note)


def select(
    gems: frozenset[str],
    direct: frozenset[str],
    *,
    release: str = DEFAULT_RELEASE,
    variant_processor: str | None = None,
    git: bool = False,
) -> Selection:
    """The packages for these gems. `direct` are the gems the Gemfile names; `variant_processor`
    is Active Storage's (vips or mini_magick) when image_processing brings both image gems."""
    skipped = _image_gems_not_used(gems, direct, variant_processor)
    uses: list[GemUse] = []
    build_args: dict[str, str] = {}
    for row in TABLE:
        if row.gem not in gems:
            continue
        if row.gem in skipped:
            uses.append(
                GemUse(gem=row.gem, build=(), runtime=(), note=skipped[row.gem], skipped=True)
            )
            continue
        uses.append(
            GemUse(
                gem=row.gem,
                build=row.build,
                runtime=row.runtime_for(release),
                optional=row.optional,
                note=row.note,
                unsupported=row.unsupported,
            )
        )
        build_args.update(row.build_args)
    if git:
        uses.append(GemUse(gem="(git sources)", build=("git",), runtime=(), note=GIT_NOTE))
    return Selection(
        packages=tuple(sorted({p for use in uses for p in use.runtime})),
        build_packages=tuple(sorted({p for use in uses for p in use.build})),
        build_args=dict(sorted(build_args.items())),
        uses=tuple(uses),
    )


def _image_gems_not_used(
    gems: frozenset[str], direct: frozenset[str], processor: str | None
) -> dict[str, str]:
    """ruby-vips / mini_magick that only image_processing pulled in and Active Storage does not
    use: gem -> why its packages are left out."""
    if "image_processing" not in gems or processor not in _IMAGE_GEMS:
        return {}
    used = _IMAGE_GEMS[processor]
    return {
        gem: f"not added: only image_processing needs it, and Active Storage uses :{processor}"
        for gem in _IMAGE_GEMS.values()
        if gem != used and gem in gems and gem not in direct
    }


def variant_processor(root: Path) -> str | None:
    """Active Storage's variant processor in production: set in config/application.rb,
    config/environments/production.rb or an initializer, else from `load_defaults` (:vips from
    7.0 on, :mini_magick before); None when none of them says."""
    config = root / "config"
    files = [config / "application.rb", config / "environments" / "production.rb"]
    files += sorted((config / "initializers").glob("*.rb"))
    defaults = None
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            if match := _VARIANT.search(line):
                return match[1]
        if path.name == "application.rb" and (match := _LOAD_DEFAULTS.search(text)):
            defaults = int(match[1])
    if defaults is None:
        return None
    return "vips" if defaults >= 7 else "mini_magick"


def release_of(base_image: str) -> str | None:
    """bookworm or trixie from an image reference (`debian:trixie-slim`, `debian:13`), else None."""
    try:
        parsed = reference.normalize(base_image)
    except InvalidReferenceError:
        return None  # config refuses it, with the reason
    last = f"{parsed.path.rsplit('/', 1)[-1]}:{parsed.tag}"
    for release, number in (("bookworm", "12"), ("trixie", "13")):
        if release in last or re.search(rf":{number}(?:[.-]|$)", last):
            return release
    return None


def markdown_table() -> str:
    """The table as docs/init.md shows it."""
    lines = [
        "| gem | `base.build_packages` | `base.packages` | notes |",
        "|---|---|---|---|",
    ]
    for row in TABLE:
        runtime = " ".join(
            f"`{name}`" + (f" (trixie: `{row.trixie[name]}`)" if name in row.trixie else "")
            for name in row.runtime
        )
        notes = row.note
        if row.optional:
            notes = f"optional: {row.optional}" + (f"; {notes}" if notes else "")
        if row.build_args:
            args = ", ".join(f"`{k}={v}`" for k, v in row.build_args.items())
            notes = f"`base.build_args`: {args}: {notes}"
        if row.unsupported:
            notes = f"**unsupported**: {notes}"
        build = " ".join(f"`{name}`" for name in row.build)
        lines.append(f"| `{row.gem}` | {build or '—'} | {runtime or '—'} | {notes} |")
    lines.append(f"| (any `GIT` source) | `git` | — | {GIT_NOTE} |")
    return "\n".join(lines) + "\n"
