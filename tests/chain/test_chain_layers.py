"""The chain's specs (chain.layers): which change moves which layer's key, what each layer sees."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from chain_shop import write_shop

from buildkit.chain import layers
from buildkit.config.loading import Config
from buildkit.errors import InputError


@pytest.fixture
def shop(tmp_path: Path) -> Config:
    return write_shop(tmp_path)


def keys(config: Config) -> dict[str, str]:
    return {spec.name: spec.key for spec in layers.chain(config)}


def edit(config: Config, name: str, text: str) -> Config:
    (config.app.context / name).write_text(text)
    return config


def mkdir(config: Config, name: str) -> Config:
    (config.app.context / name).mkdir(parents=True)
    return config


def with_ruby(config: Config, version: str) -> Config:
    return dataclasses.replace(config, ruby=dataclasses.replace(config.ruby, version=version))


def with_packages(config: Config, *packages: str) -> Config:
    return dataclasses.replace(config, base=dataclasses.replace(config.base, packages=packages))


def with_command(config: Config, command: str) -> Config:
    return dataclasses.replace(config, app=dataclasses.replace(config.app, command=command))


def with_processes(config: Config, **processes: str) -> Config:
    app = dataclasses.replace(config.app, processes=processes)
    return dataclasses.replace(config, app=app)


Change = Callable[[Config], Config]
LOCK_BUMP = "GEM\n  specs:\n    rack (3.2.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rack\n"
ALL = {"ruby", "base", "app"}

CHANGES = [
    pytest.param(lambda c: edit(c, "app.rb", 'puts "bye"\n'), {"app"}, id="source file"),
    pytest.param(lambda c: edit(c, "lib/extra.rb", "X = 1\n"), {"app"}, id="new source file"),
    pytest.param(lambda c: with_command(c, "ruby other.rb"), {"app"}, id="app command"),
    pytest.param(lambda c: with_processes(c, worker="bin/jobs"), {"app"}, id="new process"),
    pytest.param(lambda c: with_processes(c, web="ignored"), set(), id="web is the command"),
    pytest.param(lambda c: edit(c, "README.md", "# changed\n"), set(), id="ignored file"),
    pytest.param(lambda c: mkdir(c, "lib/empty"), {"app"}, id="empty directory"),
    pytest.param(lambda c: mkdir(c, "tmp/pids"), set(), id="ignored empty directory"),
    pytest.param(lambda c: edit(c, "Gemfile.lock", LOCK_BUMP), {"base", "app"}, id="Gemfile.lock"),
    pytest.param(
        lambda c: edit(c, "vendor/cache/rack-3.1.8.gem", "other\n"), {"base", "app"}, id="gem"
    ),
    pytest.param(lambda c: with_packages(c, "curl", "libpq5"), {"base", "app"}, id="OS packages"),
    pytest.param(lambda c: with_ruby(c, "3.3.9"), ALL, id="ruby version"),
    pytest.param(lambda c: dataclasses.replace(c, base_image="debian:trixie"), ALL, id="OS image"),
]


def test_same_tree_and_config_give_the_same_keys(shop: Config) -> None:
    assert keys(shop) == keys(shop)


@pytest.mark.parametrize(("apply", "moved"), CHANGES)
def test_what_each_change_moves(shop: Config, apply: Change, moved: set[str]) -> None:
    before = keys(shop)
    after = keys(apply(shop))
    assert {name for name in before if before[name] != after[name]} == moved


def test_a_rebuilt_parent_moves_the_child_key_with_the_same_inputs(shop: Config) -> None:
    _, base, _ = layers.chain(shop)
    _, moved_base, _ = layers.chain(with_ruby(shop, "3.3.9"))
    assert moved_base.inputs == base.inputs  # nothing of base's own changed ...
    assert moved_base.key != base.key  # ... but it is built FROM another ruby image


def test_each_layer_builds_from_its_parent_image(shop: Config) -> None:
    ruby, base, app = layers.chain(shop)
    assert (ruby.parent, base.parent, app.parent) == (None, ruby, base)
    assert base.build_args["RUBY_IMAGE"] == ruby.image
    assert app.build_args["BASE_IMAGE"] == base.image  # no bulk files in this app


def test_images_are_named_after_the_registry_config_name_and_key(shop: Config) -> None:
    for spec in layers.chain(shop):
        assert spec.image == f"reg.test:5000/shop-{spec.name}:{spec.key[:12]}"


def test_base_sees_only_the_gem_files(shop: Config) -> None:
    _, base, app = layers.chain(shop)
    assert base.ignore == ("*", "!Gemfile", "!Gemfile.lock", "!vendor/cache")
    base_files = {name for name in base.inputs if name.startswith("file:")}
    assert base_files == {"file:Gemfile", "file:Gemfile.lock", "file:vendor/cache/rack-3.1.8.gem"}
    assert "file:app.rb" in app.inputs
    assert "file:README.md" not in app.inputs  # .dockerignore'd: not in the image, not in the key


def test_ruby_records_its_version_for_the_reasons(shop: Config) -> None:
    ruby = layers.chain(shop)[0]
    assert ruby.inputs["ruby version"] == "3.3.8"
    assert ruby.inputs["ruby source"] == "ruby-build definition"


def test_a_missing_lockfile_is_an_input_error(shop: Config) -> None:
    (shop.app.context / "Gemfile.lock").unlink()
    with pytest.raises(InputError, match=r"Gemfile\.lock is missing.*bundle lock"):
        layers.chain(shop)


def test_an_app_that_ignores_its_lockfile_is_an_input_error(shop: Config) -> None:
    edit(shop, ".dockerignore", "*.md\nGemfile.lock\n")
    with pytest.raises(InputError, match=r"excludes Gemfile\.lock"):
        layers.chain(shop)


# Rails' own .dockerignore keeps these .keep files; `COPY . /app/` would then give the
# directories (made for the app user by imgbuild's base image) back to root.
RAILS_KEEPS = (
    "/log/*\n/tmp/*\n!/log/.keep\n!/tmp/.keep\n/tmp/pids/*\n!/tmp/pids/.keep\n"
    "/storage/*\n!/storage/.keep\n"
)
RUNTIME_FILES = ("log/.keep", "tmp/.keep", "tmp/pids/.keep", "storage/.keep", "storage/db.sqlite3")


def with_runtime_files(config: Config) -> Config:
    edit(config, ".dockerignore", "*.md\n" + RAILS_KEEPS)
    for rel in RUNTIME_FILES:
        (config.app.context / rel).parent.mkdir(parents=True, exist_ok=True)
        edit(config, rel, "")
    return config


def test_imgbuilds_app_dockerfile_leaves_tmp_log_and_storage_out(shop: Config) -> None:
    app = layers.chain(with_runtime_files(shop))[2]
    assert not [name for name in app.inputs if name.startswith(("file:tmp", "file:log", "file:st"))]
    # After the app's own patterns, in the ignore file BuildKit reads: no `!` line comes later.
    assert app.ignore[-len(layers.RUNTIME_PATTERNS) :] == layers.RUNTIME_PATTERNS
    assert layers.RUNTIME_PATTERNS == ("tmp", "tmp/**", "log", "log/**", "storage", "storage/**")
    assert "file:app.rb" in app.inputs


def test_an_app_dockerfile_of_its_own_gets_the_runtime_dirs_as_dockerignore_says(
    shop: Config,
) -> None:
    """The Dockerfile Rails generates chowns tmp/, log/ and storage/ after its copy."""
    (shop.app.context / "Dockerfile.app").write_text("FROM ${BASE_IMAGE}\nCOPY . /app/\n")
    own = dataclasses.replace(
        shop, app=dataclasses.replace(shop.app, dockerfile=shop.app.context / "Dockerfile.app")
    )
    app = layers.chain(with_runtime_files(own))[2]
    kept = {name.removeprefix("file:") for name in app.inputs if name.startswith("file:")}
    assert {"log/.keep", "tmp/.keep", "tmp/pids/.keep", "storage/.keep"} <= kept
    assert "storage/db.sqlite3" not in kept
    assert not set(layers.RUNTIME_PATTERNS) & set(app.ignore[-4:])


def test_nothing_under_the_runtime_dirs_moves_the_app_key(shop: Config) -> None:
    before = keys(with_runtime_files(shop))
    # A file the app's .dockerignore re-includes: not in the image, so not in the key.
    assert keys(edit(shop, "storage/.keep", "now with content\n")) == before
    assert keys(edit(shop, "app.rb", "puts 1\n"))["app"] != before["app"]


def test_an_empty_directory_is_a_reason_to_rebuild(shop: Config) -> None:
    app = layers.chain(mkdir(shop, "lib/empty"))[2]
    assert app.inputs["file:lib/empty/"] == "dir"
    assert "file:lib/" not in app.inputs  # a directory with files is known by its files


def test_the_app_spec_carries_its_processes_and_says_what_changed(shop: Config) -> None:
    """The spec lists the processes (web first) for the labels; the inputs name each one, so
    the plan's reason says which process changed."""
    before = layers.chain(with_processes(shop, worker="bin/jobs"))[-1]
    after = layers.chain(with_processes(shop, worker="bin/jobs --all", cron="bin/cron"))[-1]
    assert before.processes == (("web", shop.app.command), ("worker", "bin/jobs"))
    assert after.processes[0] == ("web", shop.app.command)
    assert before.inputs["processes"] == "web worker"
    assert (before.inputs["process worker"], after.inputs["process worker"]) == (
        "bin/jobs",
        "bin/jobs --all",
    )
    assert "process web" not in before.inputs  # it is `command`
