"""Reading a whole app: is it a Rails app, its name, .dockerignore advice, assets, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rails_apps import rails_app

from buildkit.errors import ConfigError, InputError
from buildkit.scaffold import detect as detectmod


def detect(root: Path, **kwargs: object) -> detectmod.Detection:
    return detectmod.detect(root, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("remove", "missing"),
    [
        (["Gemfile"], "it has no Gemfile;"),
        (["config/application.rb"], "it has no config/application.rb;"),
        (["Gemfile", "config/application.rb"], "no Gemfile and no config/application.rb"),
    ],
)
def test_not_a_rails_app_names_what_is_missing(
    tmp_path: Path, remove: list[str], missing: str
) -> None:
    root = rails_app(tmp_path / "app")
    for name in remove:
        (root / name).unlink()
    with pytest.raises(InputError) as info:
        detect(root)
    assert f"{root} is not a Rails app" in info.value.message
    assert missing in info.value.message


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a directory"):
        detect(tmp_path / "nowhere")


def test_missing_lockfile(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "app")
    (root / "Gemfile.lock").unlink()
    with pytest.raises(InputError, match=r"Gemfile\.lock is missing"):
        detect(root)


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        ("shop", "shop"),
        ("Shop", "shop"),
        ("my_app", "my_app"),
        ("my app", "my-app"),
        ("My.Rails--App", "my.rails--app"),
        ("..hidden__", "hidden"),
        ("a..b", "a-b"),
        ("café-shop", "caf-shop"),
        ("___", "app"),
    ],
)
def test_name_from_the_directory(tmp_path: Path, directory: str, name: str) -> None:
    assert detectmod.registry_safe_name(directory) == name
    found = detect(rails_app(tmp_path / directory))
    assert (found.name, found.name_source) == (name, "the directory name")


def test_name_and_registry_flags(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "app")
    found = detect(root, name="team/shop", registry="127.0.0.1:5000/")
    assert (found.name, found.name_source, found.registry) == (
        "team/shop",
        "--name",
        "127.0.0.1:5000",
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"name": "Shop"}, "--name: name 'Shop' is not a valid image repository name"),
        ({"registry": "http://registry"}, "--registry: registry 'http://registry' is a URL"),
        ({"registry": "registry"}, "--registry: registry 'registry' is no registry host"),
    ],
)
def test_bad_flags_are_config_errors_naming_the_flag(
    tmp_path: Path, flags: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        detect(rails_app(tmp_path / "app"), **flags)
    assert info.value.message.startswith(message)


def suggested(found: detectmod.Detection) -> list[str]:
    return [s.pattern for s in found.dockerignore.suggestions]


def test_dockerignore_missing_suggests_what_the_defaults_do_not_cover(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "app", files={"package.json": "{}", "storage/.keep": "", "spec/a_spec.rb": ""}
    )
    found = detect(root)
    assert not found.dockerignore.exists
    assert suggested(found) == [
        "/node_modules",
        "/.bundle",
        "/vendor/bundle",
        "/storage/*",
        "/coverage",
        "/spec",
    ]


def test_dockerignore_suggestions_follow_what_the_app_has(tmp_path: Path) -> None:
    found = detect(rails_app(tmp_path / "app", files={"test/test_helper.rb": ""}))
    assert suggested(found) == ["/.bundle", "/vendor/bundle", "/coverage", "/test"]


def test_a_complete_dockerignore_gets_no_suggestion(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "app",
        files={
            "package.json": "{}",
            "storage/.keep": "",
            "spec/a_spec.rb": "",
            ".dockerignore": "node_modules/\n.bundle\nvendor/bundle\nstorage/*\n!storage/.keep\n"
            "coverage\nspec\n",
        },
    )
    found = detect(root)
    assert found.dockerignore.exists
    assert suggested(found) == []


def test_a_dockerignore_that_re_includes_a_default_is_told(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "app", files={".dockerignore": "!log\n.bundle\nvendor/bundle\ncoverage\n"}
    )
    assert suggested(detect(root)) == ["/log/*"]


def test_a_dockerignore_excluding_the_lockfile_is_a_warning(tmp_path: Path) -> None:
    root = rails_app(tmp_path / "app", files={".dockerignore": "Gemfile.lock\n"})
    found = detect(root)
    assert found.dockerignore.excludes_needed == ("Gemfile.lock",)
    assert any("excludes Gemfile.lock" in w for w in found.warnings)


def test_assets_and_node(tmp_path: Path) -> None:
    root = rails_app(
        tmp_path / "app",
        gems=("rails", "propshaft", "jsbundling-rails"),
        files={"app/assets/stylesheets/app.css": "", "package.json": "{}", "yarn.lock": ""},
    )
    assets = detect(root).assets
    assert assets.paths == ("app/assets", "package.json")
    assert assets.gems == ("propshaft", "jsbundling-rails")
    assert (assets.node, assets.js_lockfile) == (True, "yarn.lock")
    bare = detect(rails_app(tmp_path / "api", gems=("rails",))).assets
    assert (bare.paths, bare.node) == ((), False)


def test_mac_only_lockfile_is_a_warning_with_the_fix(tmp_path: Path) -> None:
    found = detect(rails_app(tmp_path / "app", platforms=("arm64-darwin-23",)))
    assert any("bundle lock --add-platform x86_64-linux" in w for w in found.warnings)
    assert not detect(rails_app(tmp_path / "ok")).warnings


def test_path_gems_are_a_warning(tmp_path: Path) -> None:
    found = detect(rails_app(tmp_path / "app", path_gems=("admin",)))
    assert any("'engines/admin'" in w and "vendor/cache" in w for w in found.warnings)


def test_unsupported_gem_is_a_warning(tmp_path: Path) -> None:
    found = detect(rails_app(tmp_path / "app", gems=("rails", "ruby-oci8")))
    assert any(w.startswith("ruby-oci8: Oracle Instant Client") for w in found.warnings)


@pytest.mark.parametrize(
    ("env", "release", "warns"),
    [
        ({}, "bookworm", False),
        ({"IMGBUILD_BASE_IMAGE": "debian:trixie-slim"}, "trixie", False),
        ({"IMGBUILD_BASE_IMAGE": "ubuntu:24.04"}, "bookworm", True),
    ],
)
def test_release_follows_the_base_image_imgbuild_will_use(
    tmp_path: Path, env: dict[str, str], release: str, warns: bool
) -> None:
    found = detect(rails_app(tmp_path / "app", gems=("rails", "charlock_holmes")), env=env)
    assert found.release == release
    assert found.packages.packages == (("libicu76",) if release == "trixie" else ("libicu72",))
    assert any("names no Debian release" in w for w in found.warnings) is warns


def test_as_json_round_trips(tmp_path: Path) -> None:
    found = detect(rails_app(tmp_path / "app", gems=("rails", "pg", "bootsnap")))
    data = json.loads(json.dumps(found.as_json()))
    assert data["ruby"] == {"version": "3.3.8", "source": ".ruby-version", "written": "3.3.8"}
    assert data["packages"] == ["libpq5"]
    assert data["bootsnap"] is True
    assert data["command"]["value"] == "bundle exec rails server -b 0.0.0.0"
