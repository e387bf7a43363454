"""The `codebuild:` section of imgbuild.yaml: defaults, every key, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from buildkit.config import loading as configmod
from buildkit.config.codebuild import CodeBuildSettings, EnvVar
from buildkit.errors import ConfigError

SHOP = """\
name: shop
registry: 123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/team
ruby:
  version: "3.3.8"
"""
FULL_SECTION = """\
codebuild:
  github: https://github.com/acme/shop
  compute_type: BUILD_GENERAL1_SMALL
  create_role: true
  batch: true
  logs_group: /ci/shop
  file_paths: ["^app/", "^Gemfile"]
  env:
    RAILS_ENV: production
    BUNDLE_TOKEN: {secrets_manager: "ci/bundle:token"}
    API_URL: {parameter_store: /ci/api-url}
  tags:
    team: web
"""


def write_config(root: Path, section: str = FULL_SECTION, base: str = SHOP) -> Path:
    """A config that resolves without Docker or the dev services (no local Ruby tarball)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "imgbuild.yaml"
    path.write_text(base + textwrap.dedent(section))
    return path


def resolve(path: Path) -> configmod.Config:
    return configmod.resolve(path, env={})


def test_absent_section_gives_defaults_named_after_the_image(tmp_path: Path) -> None:
    settings = resolve(write_config(tmp_path, section="")).codebuild
    assert settings == CodeBuildSettings(project="shop")
    assert not settings.enabled
    assert settings.image == "aws/codebuild/standard:7.0"
    assert settings.install == ("pip install imgbuild",)
    assert settings.branch == "main"


def test_every_key_is_parsed(tmp_path: Path) -> None:
    settings = resolve(write_config(tmp_path)).codebuild
    assert settings.enabled
    assert settings.project == "shop"
    assert settings.github == "https://github.com/acme/shop"
    assert settings.compute_type == "BUILD_GENERAL1_SMALL"
    assert settings.create_role
    assert settings.service_role is None
    assert settings.batch
    assert settings.logs_group == "/ci/shop"
    assert settings.file_paths == ("^app/", "^Gemfile")
    assert settings.env == (
        EnvVar(name="RAILS_ENV", value="production", type="PLAINTEXT"),
        EnvVar(name="BUNDLE_TOKEN", value="ci/bundle:token", type="SECRETS_MANAGER"),
        EnvVar(name="API_URL", value="/ci/api-url", type="PARAMETER_STORE"),
    )
    assert settings.tags == {"team": "web"}


def test_install_may_be_a_list_and_project_is_configurable(tmp_path: Path) -> None:
    section = """\
    codebuild:
      project: shop-images
      install: ["pip install -U pip", "pip install ./tools/imgbuild"]
      service_role: arn:aws:iam::123456789012:role/ci
      timeout_minutes: 90
    """
    settings = resolve(write_config(tmp_path, section)).codebuild
    assert settings.project == "shop-images"
    assert settings.install == ("pip install -U pip", "pip install ./tools/imgbuild")
    assert settings.service_role == "arn:aws:iam::123456789012:role/ci"
    assert settings.timeout_minutes == 90


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("codebuild:\n  compute_typ: BUILD_GENERAL1_SMALL\n", "did you mean 'compute_type'"),
        ("codebuild:\n  compute_type: HUGE\n", "BUILD_GENERAL1_SMALL, BUILD_GENERAL1_MEDIUM"),
        ("codebuild:\n  github: git@github.com:acme/shop\n", "https URL"),
        ("codebuild:\n  timeout_minutes: 3\n", "from 5 to 2160"),
        ("codebuild:\n  env:\n    X: {vault: y}\n", "parameter_store"),
        ("codebuild:\n  env:\n    AWS_REGION: x\n", "reserved"),
        ("codebuild:\n  file_paths: ['^app/(']\n", "not a regular expression"),
        ("codebuild:\n  service_role: ci-role\n", "a role ARN"),
        (
            "codebuild:\n  create_role: true\n  service_role: arn:aws:iam::123456789012:role/x\n",
            "not both",
        ),
        ("codebuild:\n  report_group: 'size report'\n", "codebuild.report_group"),
        ("codebuild:\n  install: []\n", "codebuild.install"),
    ],
)
def test_bad_values_are_one_line_errors_naming_file_and_line(
    tmp_path: Path, section: str, expected: str
) -> None:
    path = write_config(tmp_path, section)
    with pytest.raises(ConfigError) as caught:
        resolve(path)
    message = caught.value.message
    assert expected in message
    assert message.startswith(f"{path}:")
    assert "\n" not in message


def test_cli_reports_a_config_error_with_exit_code_3(tmp_path: Path) -> None:
    path = write_config(tmp_path, "codebuild:\n  batch: maybe\n")
    result = subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(path), "codebuild", "render"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"imgbuild: error: {path}:6: 'codebuild.batch' must be true or false, not 'maybe'"
    ]
