"""`init_app` end to end: the file it writes loads with imgbuild's own loader into the expected
Config, explains each value, never overwrites without force, and never leaves half a file."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rails_apps import rails_app

from buildkit.config import loading, schema, yamlsrc
from buildkit.errors import ConfigError, InputError
from buildkit.scaffold import render as rendermod
from buildkit.scaffold import write as writemod
from buildkit.source.dockerignore import IgnoreRules

RAILS_PUMA_RB = 'port ENV.fetch("PORT", 3000)\n'
BIN_RAILS = {"bin/rails": "#!/usr/bin/env ruby\n"}
# The gems of a Rails 7.2 `rails new` app (sqlite3, propshaft, importmap, puma, bootsnap),
# trimmed to the ones that matter here plus a few that do not.
RAILS_NEW = (
    "actionpack (7.2.2.2)",
    "bootsnap (1.18.4)",
    "bigdecimal (3.1.9)",
    "date (3.4.1)",
    "debug (1.10.0)",
    "io-console (0.8.0)",
    "importmap-rails (2.1.0)",
    "msgpack (1.8.0)",
    "nio4r (2.7.4)",
    "nokogiri (1.18.2)",
    "nokogiri (1.18.2-x86_64-linux-gnu)",
    "propshaft (1.1.0)",
    "psych (5.2.3)",
    "puma (6.6.0)",
    "racc (1.8.1)",
    "rails (7.2.2.2)",
    "sqlite3 (2.5.0)",
    "sqlite3 (2.5.0-x86_64-linux-gnu)",
    "websocket-driver (0.7.7)",
)


@dataclass(frozen=True)
class Case:
    """A fixture app and the Config its imgbuild.yaml must resolve to."""

    id: str
    make: Callable[[Path], Path]
    packages: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    build_args: dict[str, str] = field(default_factory=dict)
    command: str = "bin/rails server -b 0.0.0.0"
    port: int = 3000
    ruby: str = "3.3.8"
    name: str = "app"
    registry: str | None = None
    flags: dict[str, str] = field(default_factory=dict)
    processes: dict[str, str] = field(default_factory=dict)  # app.processes besides web


CASES = [
    Case(id="minimal", make=lambda root: rails_app(root, gems=("rails",), files=BIN_RAILS)),
    Case(
        id="rails-new",
        make=lambda root: rails_app(
            root,
            gems=RAILS_NEW,
            direct=(
                "rails",
                "sqlite3",
                "puma",
                "propshaft",
                "importmap-rails",
                "bootsnap",
                "debug",
            ),
            files={**BIN_RAILS, "config/puma.rb": RAILS_PUMA_RB, "app/assets/config/x": ""},
        ),
        packages=("libsqlite3-0", "libxml2", "libxslt1.1", "libyaml-0-2"),
        build_packages=(
            "libsqlite3-dev",
            "libssl-dev",
            "libxml2-dev",
            "libxslt1-dev",
            "libyaml-dev",
            "zlib1g-dev",
        ),
        build_args={"NOKOGIRI_USE_SYSTEM_LIBRARIES": "1"},
        command="bundle exec puma -C config/puma.rb",
    ),
    Case(
        id="postgres-procfile",
        make=lambda root: rails_app(
            root,
            gems=("rails", "pg", "puma", "sidekiq"),
            files={
                "Procfile": "web: bundle exec puma -C config/puma.rb\n"
                "worker: bundle exec sidekiq\nsidekiq_low: bundle exec sidekiq -q low\n"
                "release: bin/rails db:migrate && bin/seed\n",
                "config/puma.rb": "port 4000\n",
            },
        ),
        packages=("libpq5",),
        build_packages=("libpq-dev", "libssl-dev"),
        command="bundle exec puma -C config/puma.rb",
        port=4000,
        processes={"worker": "bundle exec sidekiq", "sidekiq-low": "bundle exec sidekiq -q low"},
    ),
    Case(
        id="mysql-vips",
        make=lambda root: rails_app(
            root,
            gems=("rails", "mysql2", "image_processing", "mini_magick", "ruby-vips", "ffi"),
            direct=("rails", "mysql2", "image_processing"),
            files=BIN_RAILS,
        ),
        packages=("libffi8", "libmariadb3", "libvips"),
        build_packages=("default-libmysqlclient-dev", "libffi-dev"),
    ),
    Case(
        id="procfile-port-var",
        make=lambda root: rails_app(
            root,
            gems=("rails", "sqlite3"),
            files={"Procfile": "web: bin/rails server -p ${PORT:-5000} -b 0.0.0.0\n"},
        ),
        packages=("libsqlite3-0",),
        build_packages=("libsqlite3-dev",),
        command="bin/rails server -p 3000 -b 0.0.0.0",
    ),
    Case(
        id="procfile-needs-shell",
        make=lambda root: rails_app(
            root,
            gems=("rails",),
            files={**BIN_RAILS, "Procfile": "web: bin/rails db:prepare && bin/rails server\n"},
        ),
    ),
    Case(
        id="git-gems-and-flags",
        make=lambda root: rails_app(root, gems=("rails",), git=("payments",), files=BIN_RAILS),
        build_packages=("git",),
        name="team/shop",
        registry="127.0.0.1:5000",
        flags={"name": "team/shop", "registry": "127.0.0.1:5000"},
    ),
    Case(
        id="ruby-from-gemfile",
        make=lambda root: rails_app(
            root,
            gems=("rails",),
            ruby_version=None,
            gemfile_extra='ruby "3.2.6"\n',
            files=BIN_RAILS,
        ),
        ruby="3.2.6",
    ),
    Case(
        id="ruby-from-lockfile",
        make=lambda root: rails_app(
            root, gems=("rails",), ruby_version=None, lock_ruby="3.4.1p0", files=BIN_RAILS
        ),
        ruby="3.4.1",
    ),
]


def init(root: Path, **kwargs: object) -> writemod.InitResult:
    return writemod.init_app(root, env={}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_written_file_loads_into_the_expected_config(tmp_path: Path, case: Case) -> None:
    root = case.make(tmp_path / "app")
    result = init(root, **case.flags)
    assert result.path == root / "imgbuild.yaml"
    assert result.path.read_text(encoding="utf-8") == result.text
    config = loading.resolve(result.path, env={})
    assert config.name == case.name
    assert config.registry == case.registry
    assert config.base_image == schema.DEFAULT_BASE
    assert config.ruby.version == case.ruby
    assert config.base.packages == case.packages
    assert config.base.build_packages == case.build_packages
    assert dict(config.base.build_args) == case.build_args
    assert config.base.bundle_without == ("development", "test")
    assert config.app.command == case.command
    assert dict(config.app.processes) == {"web": case.command, **case.processes}
    assert config.app.port == case.port
    assert config.app.context == root.resolve()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_value_has_its_comment(tmp_path: Path, case: Case) -> None:
    """Every line that sets a value follows a comment line: each choice is explained."""
    lines = init(case.make(tmp_path / "app"), **case.flags).text.splitlines()
    setting = re.compile(r"^\s*[A-Za-z_]+: \S")
    for i, line in enumerate(lines):
        if setting.match(line):
            assert lines[i - 1].lstrip().startswith("#"), f"no comment above {line!r}"
    assert all(len(line) <= rendermod.WIDTH for line in lines)


def test_comments_say_where_values_came_from(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "shop",
        gems=("rails", "pg", "puma", "bootsnap"),
        files={
            "Procfile": "web: bundle exec puma -p $PORT\nworker: bundle exec sidekiq\n",
            "app/javascript/application.js": "",
            "package.json": "{}",
        },
    )
    text = init(root).text
    flat = " ".join(re.sub(r"^\s*#\s*", "", line) for line in text.splitlines())
    for needle in (
        "from the directory name",
        "From .ruby-version (3.3.8)",
        "pg: libpq5 (optional, not added: `postgresql-client`",
        "pg: libpq-dev",
        "From Procfile's web: line ($PORT written as 3000",
        "worker: bundle exec sidekiq",
        "Assets: the app has app/javascript, package.json",
        "Node",
        "bootsnap is in Gemfile.lock",
        "The app has no .dockerignore",
        "/node_modules",
    ):
        assert needle in flat, needle
    assert "\n# registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n" in text
    assert "\n# base_image: debian:trixie-slim\n" in text


def test_procfile_processes_are_written_with_their_source(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "shop",
        gems=("rails", "puma"),
        files={
            "Procfile": "web: bundle exec puma -p $PORT\nworker: bundle exec sidekiq\n"
            "sidekiq_low: bundle exec sidekiq -q low\nrelease: bin/rails db:migrate && x\n"
            "Jobs_: bin/jobs\n"
        },
    )
    text = init(root).text
    assert (
        "  processes:\n    # From Procfile's worker: line.\n    worker: bundle exec sidekiq\n"
        in text
    )
    assert "    # From Procfile's sidekiq_low: line, named sidekiq-low (a DNS label" in text
    assert "    sidekiq-low: bundle exec sidekiq -q low\n" in text
    flat = " ".join(re.sub(r"^\s*#\s*", "", line) for line in text.splitlines())
    assert "Procfile's release: line (bin/rails db:migrate && x) is not used: it uses shell" in flat
    assert "put it in a script (bin/release)" in flat
    assert "Procfile's Jobs_: line (bin/jobs) is not used: its name is no DNS label" in flat
    processes = loading.resolve(root / "imgbuild.yaml", env={}).app.processes
    assert list(processes) == ["web", "worker", "sidekiq-low"]


def test_a_procfile_with_only_web_writes_no_processes(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "shop", gems=("rails", "puma"), files={"Procfile": "web: bin/web\n"}
    )
    assert "processes" not in init(root).text


def test_a_procfile_whose_other_lines_all_fail_names_them_in_comments(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "shop",
        gems=("rails", "puma"),
        files={"Procfile": "web: bin/web\nrelease: bin/rails db:migrate && x\n"},
    )
    text = init(root).text
    assert "processes:" not in text
    assert "None of them can be written here:" in text
    assert dict(loading.resolve(root / "imgbuild.yaml", env={}).app.processes) == {"web": "bin/web"}


def test_a_rejected_procfile_line_is_quoted_with_the_reason(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "app", files={**BIN_RAILS, "Procfile": "web: bin/rails server -e $RAILS_ENV\n"}
    )
    text = init(root).text
    assert "Procfile's web: line (bin/rails server -e $RAILS_ENV) is not used" in text
    assert "command: bin/rails server -b 0.0.0.0\n" in text


def test_warnings_head_the_file(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "app", platforms=("arm64-darwin-23",))
    text = init(root).text
    assert text.index(
        "# WARNING: Gemfile.lock lists only the platforms arm64-darwin-23"
    ) < text.index("name:")


def test_trixie_base_image_from_the_environment(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "app", gems=("rails", "charlock_holmes"))
    result = writemod.init_app(root, env={"IMGBUILD_BASE_IMAGE": "debian:trixie-slim"})
    assert "Debian trixie's" in result.text
    env = {"IMGBUILD_BASE_IMAGE": "debian:trixie-slim"}
    assert loading.resolve(result.path, env=env).base.packages == ("libicu76",)


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "app")
    (root / "imgbuild.yaml").write_text("name: mine\n")
    with pytest.raises(ConfigError) as info:
        init(root)
    assert info.value.message == (
        f"{root / 'imgbuild.yaml'} already exists; imgbuild init never overwrites it: pass "
        "--force to replace it, or edit it (docs/config.md)"
    )
    assert (root / "imgbuild.yaml").read_text() == "name: mine\n"
    result = init(root, force=True)
    assert result.replaced
    assert loading.resolve(root / "imgbuild.yaml", env={}).name == "app"


def test_the_existing_file_is_checked_before_the_app(tmp_path: Path) -> None:
    """An app init cannot read still gets the overwrite error first: nothing to lose."""
    root = tmp_path / "app"
    root.mkdir()
    (root / "imgbuild.yaml").write_text("name: mine\n")
    with pytest.raises(ConfigError, match="already exists"):
        init(root)


def test_a_file_appearing_meanwhile_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check and the write are one step (a hard link): another writer's file survives."""
    root = rails_app(tmp_path / "app")
    real = writemod._check_loads

    def racing(path: Path) -> None:
        real(path)
        (root / "imgbuild.yaml").write_text("name: theirs\n")

    monkeypatch.setattr(writemod, "_check_loads", racing)
    with pytest.raises(ConfigError, match="already exists"):
        init(root)
    assert (root / "imgbuild.yaml").read_text() == "name: theirs\n"
    assert leftovers(root) == []


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".imgbuild.yaml."))


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = rails_app(tmp_path / "app")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(InputError) as info:
        init(root)
    assert info.value.message == (
        f"cannot write {root / 'imgbuild.yaml'}: No space left on device; nothing was written"
    )
    assert not (root / "imgbuild.yaml").exists()
    assert leftovers(root) == []


def test_a_failed_forced_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rails_app(tmp_path / "app")
    (root / "imgbuild.yaml").write_text("name: mine\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(InputError, match="No space left"):
        init(root, force=True)
    assert (root / "imgbuild.yaml").read_text() == "name: mine\n"
    assert leftovers(root) == []


def test_a_config_the_loader_rejects_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rails_app(tmp_path / "app")
    monkeypatch.setattr(rendermod, "render", lambda _detection: "name: app\nrubby: {}\n")
    with pytest.raises(ConfigError) as info:
        init(root)
    assert "imgbuild init produced a config its own loader rejects" in info.value.message
    assert "unknown key 'rubby'" in info.value.message
    assert not (root / "imgbuild.yaml").exists()
    assert leftovers(root) == []


def test_the_file_is_readable_like_any_other(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = init(rails_app(tmp_path / "app")).path
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_an_unwritable_directory_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rails_app(tmp_path / "app")

    def denied(*_args: object, **_kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writemod.tempfile, "mkstemp", denied)
    with pytest.raises(InputError) as info:
        init(root)
    assert info.value.message == (
        f"cannot write {root / 'imgbuild.yaml'}: Permission denied; nothing was written"
    )


def test_a_path_with_dot_dot_names_the_real_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rails_app(tmp_path / "shop")
    (root / "sub").mkdir()
    monkeypatch.chdir(root / "sub")
    result = init(Path(".."))
    assert (result.path, result.detection.name) == (root / "imgbuild.yaml", "shop")


def test_running_from_the_app_directory_with_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rails_app(tmp_path / "shop")
    monkeypatch.chdir(root)
    result = init(Path())
    assert result.path == root / "imgbuild.yaml"
    assert result.detection.name == "shop"


def _flat(text: str) -> str:
    return " ".join(re.sub(r"^\s*#\s*", "", line) for line in text.splitlines())


def test_assets_comment_says_imgbuild_precompiles_them(tmp_path: Path) -> None:
    """app.assets is on by default for such an app (auto): the comment says so, and the file
    keeps the defaults (no `assets:` key)."""
    root = rails_app(
        tmp_path / "app", gems=("rails", "propshaft"), files={**BIN_RAILS, "app/assets/x.css": ""}
    )
    result = init(root)
    assert result.detection.assets.precompiles
    flat = _flat(result.text)
    assert "Assets: the app has app/assets (propshaft), so imgbuild precompiles them" in flat
    assert "keyed on the asset inputs (app.assets.inputs) only" in flat
    assert "\n  assets:" not in result.text
    config = loading.resolve(result.path, env={})
    assert config.app.assets == loading.AssetsConfig()


def test_assets_comment_when_auto_would_not_turn_on(tmp_path: Path) -> None:
    """No bin/rails (or only package.json): app.assets stays off unless the file says true."""
    root = rails_app(tmp_path / "app", files={"app/assets/x.css": ""})
    result = init(root)
    assert not result.detection.assets.precompiles
    flat = _flat(result.text)
    assert "turns on by itself only with bin/rails" in flat
    assert "`precompile: true`" in flat
    assert "\n  assets:" not in result.text


@pytest.mark.parametrize(
    ("lockfile", "says"),
    [
        ("yarn.lock", "yarnpkg, and runs `yarn install --frozen-lockfile`"),
        ("package-lock.json", "npm, and runs `npm ci`"),
        ("pnpm-lock.yaml", "Debian has no pnpm or bun to install pnpm-lock.yaml's packages"),
        (None, "with no lockfile installs nothing"),
    ],
)
def test_assets_comment_on_node(tmp_path: Path, lockfile: str | None, says: str) -> None:
    files = {**BIN_RAILS, "app/javascript/application.js": "", "package.json": "{}"}
    if lockfile:
        files[lockfile] = ""
    flat = _flat(init(rails_app(tmp_path / "app", files=files)).text)
    assert "the JavaScript build needs Node: the precompile stage gets Debian's nodejs" in flat
    assert says in flat
    assert "node_modules stays out of the app image" in flat


@pytest.mark.parametrize("tailwind_config", [False, True])
def test_tailwind_apps_get_their_views_as_asset_inputs(
    tmp_path: Path, tailwind_config: bool
) -> None:
    """Tailwind writes CSS for the classes it finds in views, helpers and JavaScript: an edit
    there must move the assets key, so init writes app.assets.inputs = the defaults + those."""
    files = {**BIN_RAILS, "app/assets/tailwind/application.css": "", "app/views/x.html.erb": ""}
    if tailwind_config:
        files["config/tailwind.config.js"] = "module.exports = {}\n"
    root = rails_app(
        tmp_path / "app", gems=("rails", "propshaft", "tailwindcss-rails"), files=files
    )
    result = init(root)
    added = ("app/views", "app/helpers") + (
        ("config/tailwind.config.js",) if tailwind_config else ()
    )
    config = loading.resolve(result.path, env={})
    assert config.app.assets.inputs == (*loading.DEFAULT_ASSET_INPUTS, *added)
    assert "app/javascript" in loading.DEFAULT_ASSET_INPUTS  # Tailwind scans it too
    matcher = IgnoreRules(config.app.assets.inputs)
    assert matcher.is_ignored("app/views/pages/home.html.erb")
    assert matcher.is_ignored("app/helpers/pages_helper.rb")
    assert not matcher.is_ignored("app/controllers/pages_controller.rb")
    flat = _flat(result.text)
    assert "Tailwind (tailwindcss-rails) writes the CSS for the class names it finds in" in flat
    assert "\n  assets:\n    inputs:\n      - app/assets\n" in result.text


@pytest.mark.parametrize(
    "value", ["yes", "3000", "a: b", "x # y", "null", "-x", "[a]", "plain words", "bin/rails", ""]
)
def test_render_quotes_what_yaml_would_misread(tmp_path: Path, value: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(f"key: {rendermod.scalar(value)}\n")
    assert yamlsrc.load(path, {}).data["key"] == value


def test_written_keys_are_only_documented_ones(tmp_path: Path) -> None:
    """Keys come from schema.KEYS (the loader rejects others); build_args names are free."""
    result = init(CASES[1].make(tmp_path / "app"))
    keys = re.findall(r"^( *)([A-Za-z_]+):", result.text, flags=re.MULTILINE)
    section = None
    for indent, key in keys:
        if not indent:
            assert key in schema.KEYS, key
            section = key
        elif len(indent) == 2:
            assert section is not None
            assert key in schema.KEYS[section], f"{section}.{key}"
