"""`apps:` (several apps in one config) and `ruby.repository`, from real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.chain import layers
from buildkit.config import loading as config
from buildkit.errors import ConfigError

MONO = """\
name: shop
registry: 127.0.0.1:5000
ruby:
  version: "3.3.8"
  configure_opts: [--disable-install-doc]
base:
  packages: [libpq5]
apps:
  web:
    app:
      context: web
  api:
    name: shop-api
    app:
      context: api
      port: 4000
    base:
      build_packages: [libpq-dev]
  worker:
    app:
      context: worker
    ruby:
      configure_opts: [--disable-install-doc, --disable-install-rdoc]
"""


def write(tmp_path: Path, text: str) -> Path:
    for app in ("web", "api", "worker"):
        (tmp_path / app).mkdir(exist_ok=True)
        (tmp_path / app / "Gemfile").write_text("")
    (tmp_path / "Gemfile").write_text("")
    path = tmp_path / "imgbuild.yaml"
    path.write_text(text)
    return path


def test_each_app_is_its_own_config_merged_over_the_top_level(tmp_path: Path) -> None:
    web, api, worker = config.resolve_all(write(tmp_path, MONO), env={})
    assert [c.app_key for c in (web, api, worker)] == ["web", "api", "worker"]
    assert [c.name for c in (web, api, worker)] == ["web", "shop-api", "worker"]
    assert web.app.context == (tmp_path / "web").resolve()
    assert api.app.port == 4000
    assert web.app.port == 3000
    # Mappings merge key by key: api keeps the shared packages and adds its build packages.
    assert api.base.packages == ("libpq5",)
    assert api.base.build_packages == ("libpq-dev",)
    assert worker.ruby.configure_opts == ("--disable-install-doc", "--disable-install-rdoc")
    assert {c.registry for c in (web, api, worker)} == {"127.0.0.1:5000"}


def test_apps_share_one_ruby_repository_and_the_key_says_when_they_share_the_image(
    tmp_path: Path,
) -> None:
    web, api, worker = config.resolve_all(write(tmp_path, MONO), env={})
    specs = [layers.ruby_spec(c) for c in (web, api, worker)]
    assert {s.repository for s in specs} == {"127.0.0.1:5000/shop-ruby"}
    assert specs[0].image == specs[1].image != specs[2].image
    assert layers.repository_name(web, "base") == "web-base"
    assert layers.repository_name(api, "app") == "shop-api-app"


def test_shared_ruby_repository_without_a_top_level_name_is_ruby(tmp_path: Path) -> None:
    path = write(tmp_path, MONO.replace("name: shop\n", ""))
    assert {layers.repository_name(c, "ruby") for c in config.resolve_all(path, env={})} == {"ruby"}


def test_imgbuild_name_names_the_shared_prefix_not_every_app(tmp_path: Path) -> None:
    web, *_ = config.resolve_all(write(tmp_path, MONO), env={"IMGBUILD_NAME": "store"})
    assert web.name == "web"
    assert layers.repository_name(web, "ruby") == "store-ruby"


def test_a_bad_app_name_names_the_app_s_line_not_imgbuild_name(tmp_path: Path) -> None:
    path = write(tmp_path, MONO.replace("    name: shop-api\n", "    name: Shop-API\n"))
    with pytest.raises(ConfigError, match=r"imgbuild.yaml:13: name 'Shop-API' is not a valid"):
        config.resolve_all(path, env={"IMGBUILD_NAME": "store"})


def test_ruby_repository_overrides_per_app(tmp_path: Path) -> None:
    text = MONO.replace(
        "      configure_opts: [--disable-install-doc, --disable-install-rdoc]\n",
        "      repository: shared/ruby-rdoc\n",
    )
    *_, worker = config.resolve_all(write(tmp_path, text), env={})
    assert layers.repository_name(worker, "ruby") == "shared/ruby-rdoc"


SHARED = "  repository: shared/ruby\necr:\n  repositories:\n    ruby: {}\n"


def test_single_app_ruby_repository_and_ecr_repositories(tmp_path: Path) -> None:
    base = 'name: shop\nruby:\n  version: "3.3.8"\n'
    path = write(tmp_path, base)
    assert layers.repository_name(config.resolve(path, env={}), "ruby") == "shop-ruby"
    path = write(tmp_path, base + SHARED.format("shared/ruby"))
    assert layers.repository_name(config.resolve(path, env={}), "ruby") == "shared/ruby"
    path = write(tmp_path, base + SHARED.format("x-ruby"))
    with pytest.raises(ConfigError, match=r"imgbuild.yaml:4: ruby.repository 'shared/ruby' and "):
        config.resolve(path, env={})


def test_a_config_without_apps_resolves_to_one_config(tmp_path: Path) -> None:
    path = write(tmp_path, 'name: shop\nruby:\n  version: "3.3.8"\n')
    assert config.resolve_all(path, env={}) == (config.resolve(path, env={}),)
    with pytest.raises(ConfigError, match="--app web given, but this config has no 'apps:'"):
        config.resolve_all(path, env={}, apps=("web",))


def test_resolve_needs_an_app_of_an_apps_config(tmp_path: Path) -> None:
    path = write(tmp_path, MONO)
    with pytest.raises(ConfigError, match=r"\(web, api, worker\); pick one with --app"):
        config.resolve(path, env={})
    assert config.resolve(path, env={}, app="api").name == "shop-api"


def test_selecting_apps_and_a_misspelt_one(tmp_path: Path) -> None:
    path = write(tmp_path, MONO)
    assert [c.app_key for c in config.resolve_all(path, env={}, apps=("worker", "web"))] == [
        "web",
        "worker",
    ]
    with pytest.raises(ConfigError, match="no app 'wokrer' in apps; did you mean 'worker'"):
        config.resolve_all(path, env={}, apps=("wokrer",))


def test_unknown_key_in_an_app_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MONO.replace("      port: 4000\n", "      prot: 4000\n"))
    with pytest.raises(
        ConfigError, match=r"imgbuild.yaml:16: unknown key 'apps.api.app.prot'; did you mean 'port'"
    ):
        config.resolve_all(path, env={})


def test_a_bad_per_app_value_names_the_per_app_line(tmp_path: Path) -> None:
    path = write(tmp_path, MONO.replace("      port: 4000\n", "      port: 99999\n"))
    with pytest.raises(ConfigError, match=r"imgbuild.yaml:16: 'app.port' must be a port"):
        config.resolve_all(path, env={})


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        ("apps: []\n", "'apps' must be a mapping of app names"),
        ("apps:\n  Web: {}\n", "app name 'Web' must be lowercase"),
        ("apps:\n  web: 3\n", "'apps.web' must be a mapping of keys"),
    ],
)
def test_bad_apps_sections(tmp_path: Path, apps: str, message: str) -> None:
    path = write(tmp_path, 'ruby:\n  version: "3.3.8"\n' + apps)
    with pytest.raises(ConfigError, match=message):
        config.resolve_all(path, env={})
