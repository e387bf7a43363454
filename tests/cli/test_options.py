"""An empty flag is an error, never "not given" (cli/options.py refuse_empty_values): every option
and argument that takes a value, given '' through the real `imgbuild` entry, exits 3 with one
line naming it, and does nothing else. Needs no daemon: the value is refused while parsing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main

from buildkit.cli.app import app
from tests.cli_process import run_imgbuild

CONFIG = 'name: shop\nregistry: 127.0.0.1:5000\nruby:\n  version: "3.3.8"\n'


def case(command: str, label: str, *args: str) -> Any:
    """`imgbuild -c <config> <args>`, where the args give `label` an empty value."""
    return pytest.param(command, label, list(args), id=f"{command or '(global)'} {label}")


LAYERS = ("ruby", "base", "app")
# Every option and argument that takes a value, on every command (the last test checks that
# none is missing): `command` as `imgbuild --help` names it, the parameter as the error does.
CASES = [
    case("", "-c/--config", "-c", "", "plan"),
    case("", "--registry", "--registry", "", "plan"),
    case("", "--app", "--app", "", "plan"),
    case("init", "PATH", "init", ""),
    case("init", "--name", "init", "--name", ""),
    case("init", "--registry", "init", "--registry", ""),
    *[case(layer, "-c/--config", layer, "-c", "") for layer in LAYERS],
    *[case(layer, "--registry", layer, "--registry", "") for layer in LAYERS],
    *[case(layer, "--kustomize", layer, "--kustomize", "") for layer in LAYERS],
    *[case(layer, "--jobs", layer, "--jobs", "") for layer in LAYERS],
    case("verify", "--out", "verify", "--out", ""),
    case("verify", "-c/--config", "verify", "--config", ""),
    case("verify", "--registry", "verify", "--registry", ""),
    *[
        case("report", flag, "report", flag, "")
        for flag in ("--junit", "--html", "--baseline", "--baseline-tag", "--history-file")
    ],
    case("report", "-c/--config", "report", "-c", ""),
    case("report", "--registry", "report", "--registry", ""),
    case("promote", "LAYER", "promote", "", "--from", "a.example", "--to", "b.example"),
    case("promote", "--from", "promote", "app", "--from", "", "--to", "b.example"),
    case("promote", "--to", "promote", "app", "--from", "a.example", "--to", ""),
    case(
        "promote", "-c/--config", "promote", "app", "--from", "a.example", "--to", "b.x", "-c", ""
    ),
    case("plan", "-c/--config", "plan", "-c", ""),
    case("plan", "--registry", "plan", "--registry", ""),
    *[
        case("size check", flag, "size", "check", flag, "")
        for flag in (
            "--baseline",
            "--baseline-tag",
            "--max-growth",
            "--max-bytes",
            "--metric",
            "--junit",
            "--history-file",
            "--registry",
        )
    ],
    case("size check", "-c/--config", "size", "check", "-c", ""),
    case("codebuild render", "--format", "codebuild", "render", "--format", ""),
    case("codebuild render", "--out", "codebuild", "render", "--out", ""),
    case("codebuild render", "--batch-config", "codebuild", "render", "--batch-config", ""),
    case("codebuild exports", "RESULT", "codebuild", "exports", ""),
    case("ecr ensure", "-c/--config", "ecr", "ensure", "-c", ""),
    case("ecr ensure", "--registry", "ecr", "ensure", "--registry", ""),
    case("server start", "--idle", "server", "start", "--idle", ""),
]
#: Those the command cannot run without: "leave it out" would not help.
REQUIRED = {("promote", "LAYER"), ("promote", "--from"), ("promote", "--to")}
REQUIRED |= {("codebuild exports", "RESULT")}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "imgbuild.yaml"
    config.write_text(CONFIG)
    (tmp_path / "Gemfile").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGBUILD_")}
    env.update({"IMGBUILD_SERVER": "off", "IMGBUILD_CACHE_DIR": str(tmp_path / "cache")})
    return run_imgbuild(config, *args, env=env)


@pytest.mark.parametrize(("command", "label", "args"), CASES)
def test_an_empty_value_exits_3_naming_the_flag(
    tmp_path: Path, command: str, label: str, args: list[str]
) -> None:
    result = run(tmp_path, *args)
    todo = "give a value" if (command, label) in REQUIRED else "leave it out or give a value"
    assert result.stderr.splitlines() == [f"imgbuild: error: {label} is empty: {todo}"]
    assert result.returncode == 3
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Gemfile", "imgbuild.yaml"]


def test_a_blank_value_is_empty_too(tmp_path: Path) -> None:
    result = run(tmp_path, "--registry", "  ", "plan")
    assert result.stderr == "imgbuild: error: --registry is empty: leave it out or give a value\n"
    assert result.returncode == 3


def test_every_option_that_takes_a_value_has_a_case() -> None:
    found = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for param in command.params:
            if getattr(param, "is_flag", False) or param.nargs != 1:
                continue
            is_argument = param.param_type_name == "argument"
            found.add((" ".join(path), param.name.upper() if is_argument else "/".join(param.opts)))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    assert {(c.values[0], c.values[1]) for c in CASES} == found
