"""Config resolution from real files: precedence, validation, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.config import loading as config
from buildkit.errors import ConfigError, InputError

MINIMAL = """\
name: shop
registry: 127.0.0.1:5000
ruby:
  version: "3.3.8"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "imgbuild.yaml"
    path.write_text(text)
    (tmp_path / "Gemfile").write_text("")
    return path


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    resolved = config.resolve(write(tmp_path, MINIMAL), env={})
    assert resolved.name == "shop"
    assert resolved.registry == "127.0.0.1:5000"
    assert resolved.base_image == "debian:bookworm-slim"
    assert resolved.ruby.configure_opts == ("--disable-install-doc",)
    assert resolved.base.bundle_without == ("development", "test")
    assert resolved.app.context == tmp_path.resolve()
    assert resolved.app.port == 3000


def test_precedence_file_then_env_then_flag(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {"IMGBUILD_REGISTRY": "10.0.0.1:5000"}
    assert config.resolve(path, env=env).registry == "10.0.0.1:5000"
    flag = config.Overrides(registry="registry.example:443")
    assert config.resolve(path, flag, env=env).registry == "registry.example:443"


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  verison: 3\n")
    with pytest.raises(ConfigError) as info:
        config.resolve(path, env={})
    assert f"{path}:5:" in info.value.message
    assert "ruby.verison" in info.value.message
    assert "did you mean 'version'" in info.value.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "registy: x\n")
    with pytest.raises(ConfigError, match="did you mean 'registry'"):
        config.resolve(path, env={})


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: shop\nruby: [unclosed\n")
    with pytest.raises(ConfigError, match=r"imgbuild.yaml:\d+: invalid YAML"):
        config.resolve(path, env={})


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("app:\n  port: eighty\n", "'app.port' must be a port number"),
        (
            "base:\n  packages: libpq5\n  bundle_without: 3\n",
            "'base.bundle_without' must be a list",
        ),
        ("base:\n  packages: [Bad_Pkg]\n", "not a Debian package name"),
        ("ruby:\n  version: 3.3\n", "not a full MRI version"),
        (
            "ruby:\n  version: '3.3.8'\n  jemalloc: yes please\n",
            "'ruby.jemalloc' must be true or false",
        ),
    ],
)
def test_wrong_types_are_one_line_errors(tmp_path: Path, snippet: str, message: str) -> None:
    text = "name: shop\n" + snippet
    if "ruby:" not in snippet:
        text += "ruby:\n  version: '3.3.8'\n"
    with pytest.raises(ConfigError, match=message) as info:
        config.resolve(write(tmp_path, text), env={})
    assert "\n" not in info.value.message


def test_env_var_expansion_with_default(tmp_path: Path) -> None:
    text = MINIMAL.replace("127.0.0.1:5000", "${MY_REG:-127.0.0.1:6000}")
    path = write(tmp_path, text)
    assert config.resolve(path, env={}).registry == "127.0.0.1:6000"
    assert config.resolve(path, env={"MY_REG": "127.0.0.2:7000"}).registry == "127.0.0.2:7000"


def test_unset_env_var_without_default_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("127.0.0.1:5000", "${NOPE_NOT_SET}"))
    with pytest.raises(ConfigError, match=r"imgbuild.yaml:2: \$\{NOPE_NOT_SET\} is not set"):
        config.resolve(path, env={})


def test_invalid_registry_and_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="registry 'http://x' is a URL"):
        config.resolve(write(tmp_path, MINIMAL.replace("127.0.0.1:5000", "http://x")), env={})
    with pytest.raises(ConfigError, match="not a valid image repository name"):
        config.resolve(write(tmp_path, MINIMAL.replace("shop", "Shop!")), env={})


def test_missing_dockerfile_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  dockerfile: docker/ruby.Dockerfile\n")
    with pytest.raises(InputError, match=r"imgbuild.yaml:5: ruby.dockerfile .* does not exist"):
        config.resolve(path, env={})


def test_ruby_source_needs_checksum_for_urls(tmp_path: Path) -> None:
    text = MINIMAL + "  source:\n    url: https://mirror.example/ruby-3.3.8.tar.gz\n"
    with pytest.raises(ConfigError, match="needs its sha256"):
        config.resolve(write(tmp_path, text), env={})


def test_ruby_source_path_must_be_a_ruby_build_format(tmp_path: Path) -> None:
    (tmp_path / "ruby-3.3.8.tar.xz").write_bytes(b"x")
    text = MINIMAL + "  source:\n    path: ruby-3.3.8.tar.xz\n"
    with pytest.raises(InputError, match=r"not \.tar\.gz or \.tar\.bz2"):
        config.resolve(write(tmp_path, text), env={})


def test_jemalloc_and_yjit_extend_configure_options(tmp_path: Path) -> None:
    text = MINIMAL + "  jemalloc: true\n  yjit: true\n"
    ruby = config.resolve(write(tmp_path, text), env={}).ruby
    assert ruby.effective_configure_opts == (
        "--disable-install-doc",
        "--with-jemalloc",
        "--enable-yjit",
    )


def test_command_list_is_joined(tmp_path: Path) -> None:
    text = MINIMAL + "app:\n  command: [bundle, exec, puma, -C, config/puma.rb]\n"
    assert config.resolve(write(tmp_path, text), env={}).app.command == (
        "bundle exec puma -C config/puma.rb"
    )


def test_find_config_without_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass -c FILE"):
        config.find_config(None, cwd=tmp_path)


def test_builder_from_file_and_buildx_builder_over_it(tmp_path: Path) -> None:
    """`builder:` names a buildx builder; BUILDX_BUILDER (docker's own variable) overrides it,
    and an empty BUILDX_BUILDER is unset, as docker reads it."""
    path = write(tmp_path, MINIMAL + "builder: shared\n")
    resolved = config.resolve(path, env={})
    assert (resolved.builder, resolved.builder_origin) == ("shared", f"{path}:5")
    over = config.resolve(path, env={"BUILDX_BUILDER": "cluster"})
    assert (over.builder, over.builder_origin) == ("cluster", "BUILDX_BUILDER")
    assert config.resolve(path, env={"BUILDX_BUILDER": ""}).builder == "shared"
    assert config.resolve(write(tmp_path, MINIMAL), env={}).builder is None


@pytest.mark.parametrize("value", ["'two words'", "''", "[a]", "-dash"])
def test_builder_must_be_a_builder_name(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, MINIMAL + f"builder: {value}\n")
    with pytest.raises(ConfigError, match=rf"{path}:5: 'builder' must be"):
        config.resolve(path, env={})
