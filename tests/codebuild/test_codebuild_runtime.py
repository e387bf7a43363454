"""imgbuild inside CodeBuild: reading CODEBUILD_* (buildkit/codebuild/runtime.py) and the
`codebuild preflight|exports` commands a buildspec runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.codebuild import runtime
from buildkit.config import loading as configmod
from buildkit.source import buildenv
from buildkit.source.buildenv import Trigger
from tests.config.test_codebuild_config import write_config

SHA = "0123456789abcdef0123456789abcdef01234567"
BUILD = {"CODEBUILD_BUILD_ID": "shop-pr:1b2c", "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {
                "CODEBUILD_WEBHOOK_TRIGGER": "pr/42",
                "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/fix/x",
            },
            Trigger("pr", "42", "fix/x"),
        ),
        ({"CODEBUILD_WEBHOOK_TRIGGER": "branch/main"}, Trigger("branch", "main")),
        ({"CODEBUILD_WEBHOOK_TRIGGER": "tag/v1.2.0"}, Trigger("tag", "v1.2.0")),
        ({"CODEBUILD_SOURCE_VERSION": "pr/7"}, Trigger("pr", "7")),
        ({"CODEBUILD_SOURCE_VERSION": "refs/heads/release"}, Trigger("branch", "release")),
        ({"CODEBUILD_SOURCE_VERSION": "refs/tags/v2"}, Trigger("tag", "v2")),
        ({"CODEBUILD_SOURCE_VERSION": SHA}, Trigger("commit", SHA)),
        ({"CODEBUILD_SOURCE_VERSION": "main"}, Trigger("branch", "main")),
        ({}, None),
    ],
)
def test_trigger(env: dict[str, str], expected: Trigger | None) -> None:
    assert buildenv.trigger({**BUILD, **env}) == expected


def test_nothing_is_read_outside_codebuild() -> None:
    env = {"CODEBUILD_WEBHOOK_TRIGGER": "branch/main"}
    assert not buildenv.in_codebuild(env)
    assert buildenv.trigger(env) is None
    assert runtime.should_move_release_tags("main", env) is None
    assert "not in CodeBuild" in runtime.describe("main", env)


@pytest.mark.parametrize(
    ("trigger", "move"),
    [("branch/main", True), ("branch/develop", False), ("pr/3", False), ("tag/v1", False)],
)
def test_release_tags_move_only_for_the_release_branch(trigger: str, move: bool) -> None:
    env = {**BUILD, "CODEBUILD_WEBHOOK_TRIGGER": trigger}
    assert runtime.should_move_release_tags("main", env) is move
    flag = runtime.context_variables("main", env)["IMGBUILD_RELEASE_TAGS"]
    assert flag == ("--release-tags" if move else "--no-release-tags")


def test_several_release_branches() -> None:
    env = {**BUILD, "CODEBUILD_WEBHOOK_TRIGGER": "branch/release"}
    assert runtime.should_move_release_tags(("main", "release"), env) is True
    assert runtime.should_move_release_tags("main", env) is False


def test_batch_layer() -> None:
    batch = {**BUILD, "CODEBUILD_BATCH_BUILD_IDENTIFIER": "base"}
    assert runtime.batch_layer(batch) == "base"
    assert runtime.batch_layer({**BUILD, "CODEBUILD_BATCH_BUILD_IDENTIFIER": "lint"}) is None
    assert "batch entry base" in runtime.describe("main", batch)


def test_report_dir(tmp_path: Path) -> None:
    src = {"CODEBUILD_SRC_DIR": str(tmp_path)}
    assert runtime.report_dir(src) == tmp_path / "imgbuild-reports"
    assert runtime.report_dir({**src, "IMGBUILD_REPORT_DIR": "out/r"}) == tmp_path / "out/r"
    assert runtime.report_dir({**src, "IMGBUILD_REPORT_DIR": "/abs"}) == Path("/abs")


def test_exported_variables_never_shadow_config_overrides() -> None:
    assert not set(runtime.EXPORTED) & set(configmod.ENV_OVERRIDES)
    result = {"layers": [{"name": "app", "image": "r/shop-app:abc", "digest": "sha256:1"}]}
    variables = runtime.exported_variables(result)
    assert variables["IMGBUILD_RESULT_APP_IMAGE"] == "r/shop-app:abc"
    assert variables["IMGBUILD_RESULT_APP_DIGEST"] == "sha256:1"
    assert variables["IMGBUILD_RESULT_RUBY_IMAGE"] == ""


def run_exports(
    config: Path, result_file: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`imgbuild codebuild exports RESULT`, as the buildspec runs it."""
    argv = [sys.executable, "-m", "buildkit", "-c", str(config), "codebuild", "exports"]
    return subprocess.run(
        [*argv, str(result_file)], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_exports_command_writes_the_env_file_the_buildspec_sources(tmp_path: Path) -> None:
    config = write_config(tmp_path / "shop")
    result_file = tmp_path / "build.json"
    result_file.write_text(
        json.dumps({"layers": [{"name": "app", "image": "r/a:1 2", "digest": "sha256:f"}]})
    )
    env = {"CODEBUILD_BUILD_ID": "x:1", "CODEBUILD_SRC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = run_exports(config, result_file, env)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "imgbuild-reports" / "exported.env"
    assert written.read_text() == done.stdout
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f'. {written}; printf "%s|%s" "$IMGBUILD_RESULT_APP_IMAGE" '
            '"$IMGBUILD_RESULT_APP_DIGEST"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert shown.stdout == "r/a:1 2|sha256:f"


def test_exports_of_a_missing_result_is_an_input_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "shop")
    done = run_exports(config, tmp_path / "missing.json")
    assert done.returncode == 4
    assert "did the build step fail?" in done.stderr
