"""tests/codebuild_runner.py behaves like CodeBuild: one shell, phases in order, env precedence,
on-failure, finally, CODEBUILD_BUILD_SUCCEEDING, exported variables, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.codebuild_runner import BuildResult, BuildspecError, Runner


def run(tmp_path: Path, phases: dict[str, Any], **extra: Any) -> BuildResult:
    spec = {"version": 0.2, "env": {"shell": "bash", **extra.pop("env", {})}, "phases": phases}
    spec.update(extra)
    env = {"CODEBUILD_SRC_DIR": str(tmp_path), "CODEBUILD_BUILD_ID": "t:1", "PROJECT": "project"}
    return Runner(state_dir=str(tmp_path / ".runner"), timeout=60).run(spec, env)


def outputs(result: BuildResult) -> list[str]:
    return [line for line in result.log if not line.startswith("[Container]")]


def test_one_shell_in_the_source_dir_with_variables_carried_over(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {
            "install": {"commands": ["export A=1; B=2", "mkdir -p sub && cd sub"]},
            "build": {"commands": ['echo "$A $B $(basename "$PWD") $GREETING $PROJECT"']},
        },
        env={"variables": {"GREETING": "hi", "PROJECT": "buildspec"}},
    )
    assert result.exit_code == 0
    assert result.phases == {"install": "SUCCEEDED", "build": "SUCCEEDED"}
    assert outputs(result) == ["1 2 sub hi project"]  # the project's value beats the buildspec's


def test_a_failed_command_stops_its_phase_runs_finally_then_post_build(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {
            "build": {"commands": ["echo one", "false", "echo never"], "finally": ["echo cleanup"]},
            "post_build": {"commands": ['echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"']},
        },
    )
    assert result.exit_code == 1
    assert result.phases == {"build": "FAILED", "post_build": "SUCCEEDED"}
    assert outputs(result) == ["one", "cleanup", "succeeding=0"]


def test_a_failed_install_or_pre_build_ends_the_build(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {"pre_build": {"commands": ["exit 4"]}, "build": {"commands": ["echo built"]}},
    )
    assert result.exit_code == 1
    assert result.phases == {"pre_build": "FAILED", "build": "SKIPPED", "post_build": "SKIPPED"}
    assert result.commands == [("pre_build", "exit 4", 4)]


def test_on_failure_abort_and_continue(tmp_path: Path) -> None:
    aborted = run(
        tmp_path,
        {
            "build": {"on-failure": "ABORT", "commands": ["false"]},
            "post_build": {"commands": ["echo post"]},
        },
    )
    assert aborted.phases == {"build": "FAILED", "post_build": "SKIPPED"}
    continued = run(
        tmp_path,
        {
            "install": {"on-failure": "CONTINUE", "commands": ["false"]},
            "build": {"commands": ["echo still here"]},
        },
    )
    assert continued.phases == {"install": "FAILED", "build": "SUCCEEDED"}
    assert continued.exit_code == 1
    assert outputs(continued) == ["still here"]


def test_a_command_that_exits_the_shell_fails_and_state_survives(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {
            "install": {"commands": ["export KEEP=yes; cd /"]},
            "build": {"commands": ["exit 3"]},
            "post_build": {"commands": ['echo "$KEEP $PWD"']},
        },
    )
    assert result.commands[1] == ("build", "exit 3", 3)
    assert outputs(result) == ["yes /"]


def test_exported_variables_are_read_at_the_end(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {"build": {"commands": ["OUT='a b'", "export LATER=1"]}},
        env={"exported-variables": ["OUT", "LATER", "UNSET"]},
    )
    assert result.exported == {"OUT": "a b", "LATER": "1", "UNSET": ""}


def test_commands_cannot_read_the_runner_protocol(tmp_path: Path) -> None:
    result = run(tmp_path, {"build": {"commands": ["cat", "echo after"]}})
    assert result.exit_code == 0
    assert outputs(result) == ["after"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"env": {"parameter-store": {"A": "/x"}}}, "parameter-store"),
        ({"run-as": "nobody"}, "run-as"),
        ({"phases": {"deploy": {"commands": ["true"]}}}, "deploy"),
        ({"version": 0.1}, "version 0.2"),
    ],
)
def test_features_it_does_not_emulate_are_refused(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    phases = extra.pop("phases", {"build": {"commands": ["true"]}})
    with pytest.raises(BuildspecError, match=message):
        run(tmp_path, phases, **extra)
