"""`--app` and `--jobs` through the real `imgbuild` entry, on the test monorepo: the errors a
user meets before anything builds (exit 3, one line). Needs no daemon."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import monorepo
from tests.cli_process import run_imgbuild


def imgbuild(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "mono" / "imgbuild.yaml"
    if not config.is_file():
        monorepo.lay_out(config.parent)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMGBUILD_")}
    clean.update({"IMGBUILD_SERVER": "off", "IMGBUILD_CACHE_DIR": str(tmp_path / "cache")})
    return run_imgbuild(config, *args, env={**clean, **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["app", "--jobs", "0"], {}, "--jobs must be a whole number ≥ 1, not '0'"),
        (["base", "--jobs", "two"], {}, "--jobs must be a whole number ≥ 1, not 'two'"),
        (["app"], {"IMGBUILD_JOBS": "-1"}, "IMGBUILD_JOBS must be a whole number ≥ 1, not '-1'"),
        (["app"], {"IMGBUILD_JOBS": " "}, "IMGBUILD_JOBS is empty: unset it or give a value"),
        (["--app", "wrker", "app"], {}, "no app 'wrker' in apps; did you mean 'worker'?"),
        (["app", "--verify"], {}, "--verify checks one app's image; pick the app with --app NAME"),
        (["verify"], {}, "several (web, api, worker); pick one with --app NAME"),
        (["--app", "web", "--app", "api", "size", "check"], {}, "several (web, api); pick one"),
    ],
)
def test_errors_before_anything_builds(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = imgbuild(tmp_path, *args, env=env)
    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
