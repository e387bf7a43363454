"""`registry:` and `base_image` read the way Docker reads them (engine/reference.py): what Docker
would push elsewhere or refuse is a one-line config error (exit 3) naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit.config import loading as config
from buildkit.errors import ConfigError

TEXT = """\
name: shop
registry: 127.0.0.1:5000
base_image: debian:bookworm-slim
ruby:
  version: "3.3.8"
"""
SHA = "sha256:" + "0123456789abcdef" * 4


def write(tmp_path: Path, registry: str = "127.0.0.1:5000", base: str = "debian:12") -> Path:
    path = tmp_path / "imgbuild.yaml"
    # JSON strings are YAML double-quoted scalars: brackets and colons stay the value's.
    text = TEXT.replace("127.0.0.1:5000", json.dumps(registry))
    text = text.replace("debian:bookworm-slim", json.dumps(base))
    path.write_text(text)
    (tmp_path / "Gemfile").write_text("")
    return path


def config_error(path: Path, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.resolve(path, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == 3
    assert "\n" not in info.value.message
    return info.value


@pytest.mark.parametrize(
    "registry",
    [
        "127.0.0.1:5000",
        "localhost",
        "localhost:5000",
        "[::1]:5000",
        "[fc00::1]:5000/team",
        "registry.example.com",
        "registry.example.com:443/group/project",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "123456789012.dkr-ecr.us-east-1.on.aws",
        "docker.io/acme",
        "ecr",
    ],
)
def test_registries_docker_reads_as_hosts_are_accepted(tmp_path: Path, registry: str) -> None:
    assert config.resolve(write(tmp_path, registry=registry), env={}).registry == registry


@pytest.mark.parametrize(("registry", "first"), [("registry", "registry"), ("myreg/team", "myreg")])
def test_a_registry_docker_would_read_as_docker_hub_is_refused(
    tmp_path: Path, registry: str, first: str
) -> None:
    error = config_error(write(tmp_path, registry=registry), env={})
    assert error.message.startswith(f"{tmp_path / 'imgbuild.yaml'}:2: registry '{registry}'")
    assert f"Docker would push to docker.io/{registry}/<image>" in error.message
    assert f"https://{first};" in error.message
    assert f"{first}:5000 or {first}.example.com" in error.message


def test_the_error_names_the_flag_or_the_variable_that_gave_the_registry(tmp_path: Path) -> None:
    path = write(tmp_path)
    flag = config_error(path, overrides=config.Overrides(registry="registry"), env={})
    assert flag.message.startswith("--registry: registry 'registry' is no registry host")
    env = config_error(path, env={"IMGBUILD_REGISTRY": "myreg/team"})
    assert env.message.startswith("IMGBUILD_REGISTRY: registry 'myreg/team' is no registry host")


@pytest.mark.parametrize(
    ("registry", "reason"),
    [
        ("https://registry.example.com", "is a URL"),
        ("registry.example.com:99999", "has port 99999"),
        ("registry.example.com/Team", "is not HOST[:PORT][/PATH] (repository name must be lower"),
        ("registry.example.com/team:v1", "is not HOST[:PORT][/PATH] (invalid reference format)"),
        ("-registry.example.com", "is not HOST[:PORT][/PATH] (invalid reference format)"),
    ],
)
def test_malformed_registries_are_refused(tmp_path: Path, registry: str, reason: str) -> None:
    error = config_error(write(tmp_path, registry=registry), env={})
    assert f"registry '{registry}' {reason}" in error.message


@pytest.mark.parametrize(
    "base",
    [
        "debian:bookworm-slim",
        "debian",
        "library/debian:12",
        f"debian:12@{SHA}",
        f"debian@{SHA}",
        "[fc00::1]:5000/debian",
        "[::1]:5000/debian:12",
        "localhost:5000/debian",
        "registry.example.com:5000/team/ruby:3.3",
    ],
)
def test_base_images_docker_accepts(tmp_path: Path, base: str) -> None:
    assert config.resolve(write(tmp_path, base=base), env={}).base_image == base


@pytest.mark.parametrize(
    ("base", "reason"),
    [
        ("Debian:12", "repository name must be lowercase"),
        ("registry.example.com/Team/debian", "repository name must be lowercase"),
        (":justtag", "invalid reference format"),
        ("debian@sha256:0123456789abcdef0123456789abcdef", "invalid checksum digest length"),
        ("debian@md5:" + "0" * 32, "unsupported digest algorithm"),
        ("debian@sha256:" + "F" * 64, "invalid checksum digest format"),
        ("registry.example.com/" + "a" * 256, "repository name must not be more than 255 char"),
        ("https://registry.example.com/debian", "invalid reference format"),
        ("registry.example.com:5000/debian:", "invalid reference format"),
        ("0123456789abcdef" * 4, "a 64-hex-digit name is an image ID, not a repository name"),
    ],
)
def test_base_images_docker_refuses(tmp_path: Path, base: str, reason: str) -> None:
    error = config_error(write(tmp_path, base=base), env={})
    assert f"{tmp_path / 'imgbuild.yaml'}:3: base_image '" in error.message
    assert f"is not an image reference Docker accepts ({reason}" in error.message


def test_a_url_base_image_is_told_to_drop_the_scheme(tmp_path: Path) -> None:
    error = config_error(write(tmp_path), env={"IMGBUILD_BASE_IMAGE": "https://r.example.com/d"})
    assert error.message.startswith("IMGBUILD_BASE_IMAGE: base_image 'https://r.example.com/d'")
    assert "drop the scheme" in error.message


def test_a_long_base_image_is_shortened_in_the_message(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, base="r.example.com/" + "a" * 300), env={})
    assert "(314 characters)" in error.message
    assert "a" * 100 not in error.message
