"""An empty IMGBUILD_* value is an error, never "not given" (config/envvars.py): through the config
resolution, and through the real `imgbuild` entry for every variable that takes a value; switches
take an empty value literally. Every IMGBUILD_* name in the package is one or the other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.config import envvars
from buildkit.config import loading as config
from buildkit.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "buildkit"
MINIMAL = 'name: shop\nregistry: 127.0.0.1:5000\nruby:\n  version: "3.3.8"\n'
VALUES = (
    "IMGBUILD_REGISTRY",
    "IMGBUILD_NAME",
    "IMGBUILD_BASE_IMAGE",
    "IMGBUILD_PLATFORM",
    "IMGBUILD_CACHE_DIR",
    "IMGBUILD_DOCKER",
    "IMGBUILD_ECR_ENDPOINT",
    "IMGBUILD_REPORT_DIR",
    "IMGBUILD_SERVER_DIR",
    "IMGBUILD_SERVER_IDLE",
    "IMGBUILD_JOBS",
)
#: Names imgbuild writes (buildspec variables, exported results) and never reads from its own
#: environment: `$IMGBUILD_CONFIG` reaches it as `-c`, an empty one as `-c ''` (tests/cli).
WRITTEN = (
    "IMGBUILD_APP",  # the buildspec's, as --app (codebuild/batchgraph.py)
    "IMGBUILD_CONFIG",
    "IMGBUILD_LAYER",
    "IMGBUILD_RELEASE_TAGS",
    "IMGBUILD_VERIFY",
    "IMGBUILD_TRIGGER",
    "IMGBUILD_COMMIT",
    "IMGBUILD_RESULT_",
)


def write(tmp_path: Path) -> Path:
    path = tmp_path / "imgbuild.yaml"
    path.write_text(MINIMAL)
    (tmp_path / "Gemfile").write_text("")
    return path


@pytest.mark.parametrize("var", [*config.ENV_OVERRIDES, "IMGBUILD_CACHE_DIR"])
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_variable_of_the_config_is_an_error(tmp_path: Path, var: str, empty: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.resolve(write(tmp_path), env={var: empty})
    assert info.value.message == f"{var} is empty: unset it or give a value"
    assert info.value.exit_code == 3


def test_an_empty_registry_flag_is_an_error_and_an_unset_one_the_files(tmp_path: Path) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigError) as info:
        config.resolve(path, config.Overrides(registry=""), env={})
    assert info.value.message == "--registry is empty: leave it out or give a value"
    assert (
        config.resolve(path, config.Overrides(registry=None), env={}).registry == "127.0.0.1:5000"
    )


def test_every_imgbuild_variable_the_package_names_is_a_value_a_switch_or_written() -> None:
    named = set()
    for source in PACKAGE.rglob("*.py"):
        named |= set(re.findall(r"IMGBUILD_[A-Z_]+", source.read_text(encoding="utf-8")))
    assert set(VALUES) == set(envvars.VALUES)
    assert named == set(VALUES) | set(envvars.SWITCHES) | set(WRITTEN)


def run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    path = write(tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMGBUILD_")}
    clean.update({"IMGBUILD_SERVER": "off", "IMGBUILD_CACHE_DIR": str(tmp_path / "cache")})
    return subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(path), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("var", VALUES)
def test_every_command_refuses_an_empty_variable_with_one_line(tmp_path: Path, var: str) -> None:
    result = run(tmp_path, {var: ""}, "plan")
    assert result.stderr.splitlines() == [
        f"imgbuild: error: {var} is empty: unset it or give a value"
    ]
    assert result.returncode == 3
    assert result.stdout == ""


def test_empty_switches_are_taken_literally(tmp_path: Path) -> None:
    switches = dict.fromkeys(envvars.SWITCHES, "")
    switches["IMGBUILD_SERVER_DIR"] = str(tmp_path / "sockets")  # no server of anyone else's
    result = run(tmp_path, switches, "codebuild", "render", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "batch.yml",
        "main.yml",
        "pr.yml",
    ]
