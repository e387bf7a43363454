"""`imgbuild codebuild render`: valid buildspec 0.2 (schema-checked), the right commands in the
right phases, and the checked-in example output in buildspecs/ kept current."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from buildkit.codebuild import buildspec, repo
from buildkit.config import loading as configmod
from tests.config.test_codebuild_config import FULL_SECTION, write_config
from tests.conftest import EXAMPLE, REPO, DevEnv

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "data/codebuild/buildspec.schema.json").read_text()
)
KINDS = ("pr", "main", "batch")

#: How every buildspec command names its config (and an `apps:` config's app).
SELECT = 'imgbuild -c "$IMGBUILD_CONFIG" ${IMGBUILD_APP:+--app "$IMGBUILD_APP"}'


def validate(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def render_cli(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(config), "codebuild", "render", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def rendered(tmp_path: Path) -> dict[str, dict[str, Any]]:
    config = write_config(tmp_path / "shop")
    result = render_cli(config, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    return {k: yaml.safe_load((tmp_path / "out" / f"{k}.yml").read_text()) for k in KINDS}


def commands(doc: dict[str, Any], phase: str) -> list[str]:
    return list(doc["phases"][phase]["commands"])


def test_every_rendered_buildspec_is_valid_0_2(rendered: dict[str, dict[str, Any]]) -> None:
    for kind, doc in rendered.items():
        assert validate(doc) == [], kind
        assert doc["version"] == 0.2


def test_the_schema_rejects_what_codebuild_rejects(rendered: dict[str, dict[str, Any]]) -> None:
    broken = copy.deepcopy(rendered["pr"])
    broken["phases"]["build"]["on-failure"] = "RETRY"
    broken["phases"]["deploy"] = {"commands": ["true"]}
    broken["reports"]["size"]["file-format"] = "XUNIT"
    del broken["version"]
    errors = validate(broken)
    assert len(errors) == 4, errors
    graph = copy.deepcopy(rendered["batch"])
    graph["batch"]["build-list"] = graph["batch"]["build-graph"]
    assert validate(graph) != []


def test_each_installs_imgbuild_runs_the_preflight_and_enables_buildkit(
    rendered: dict[str, dict[str, Any]],
) -> None:
    for doc in rendered.values():
        assert doc["env"]["shell"] == "bash"
        assert doc["env"]["variables"]["DOCKER_BUILDKIT"] == "1"
        assert doc["env"]["variables"]["IMGBUILD_CONFIG"] == "imgbuild.yaml"
        assert commands(doc, "install") == ["pip install imgbuild"]
        pre = commands(doc, "pre_build")
        assert any("codebuild preflight --push" in c for c in pre)
        assert pre.index('mkdir -p "$IMGBUILD_REPORT_DIR"') == 0
        assert doc["phases"]["build"]["on-failure"] == "ABORT"


def test_each_publishes_the_size_check_junit_through_a_report_group(
    rendered: dict[str, dict[str, Any]],
) -> None:
    for doc in rendered.values():
        report_dir = doc["env"]["variables"]["IMGBUILD_REPORT_DIR"]
        assert doc["reports"] == {
            "size": {"files": ["size.xml"], "base-directory": report_dir, "file-format": "JUNITXML"}
        }
        post = " ".join(commands(doc, "post_build"))
        assert 'size check --junit "$IMGBUILD_REPORT_DIR/size.xml"' in post


def test_only_the_main_buildspec_moves_release_tags(rendered: dict[str, dict[str, Any]]) -> None:
    pr, main, batch = (commands(rendered[k], "build")[0] for k in KINDS)
    assert SELECT + " app --push --no-release-tags --json" in pr
    assert SELECT + " app --push --json" in main
    assert "release-tags" not in main
    assert '"$IMGBUILD_LAYER" --push "$IMGBUILD_RELEASE_TAGS"' in batch


def test_results_become_exported_variables(rendered: dict[str, dict[str, Any]]) -> None:
    for doc in rendered.values():
        build = commands(doc, "build")
        assert build[1].endswith('codebuild exports "$IMGBUILD_REPORT_DIR/build.json"')
        assert build[2] == '. "$IMGBUILD_REPORT_DIR/exported.env"'
        assert "IMGBUILD_RESULT_APP_DIGEST" in doc["env"]["exported-variables"]


def test_batch_builds_ruby_base_app_as_dependent_builds(
    rendered: dict[str, dict[str, Any]],
) -> None:
    graph = rendered["batch"]["batch"]["build-graph"]
    assert [(e["identifier"], e.get("depend-on", [])) for e in graph] == [
        ("ruby", []),
        ("base", ["ruby"]),
        ("app", ["base"]),
    ]
    assert [e["env"]["variables"]["IMGBUILD_LAYER"] for e in graph] == ["ruby", "base", "app"]
    assert rendered["batch"]["batch"]["fast-fail"] is True
    assert "batch" not in rendered["pr"]
    assert "batch" not in rendered["main"]


def test_no_docker_login_imgbuild_authenticates_to_ecr_itself(
    rendered: dict[str, dict[str, Any]],
) -> None:
    for doc in rendered.values():
        assert not [c for p in doc["phases"].values() for c in p["commands"] if "login" in c]


def test_no_command_needs_a_running_docker_daemon(
    rendered: dict[str, dict[str, Any]], verified: dict[str, dict[str, Any]]
) -> None:
    """A source-only build needs no daemon (docs/codebuild.md, privileged mode): no `docker`
    command, no dockerd start or wait before `imgbuild ... --push`."""
    for doc in [*rendered.values(), *verified.values()]:
        for phase in doc["phases"].values():
            for command in [*phase["commands"], *phase.get("finally", [])]:
                assert re.search(r"\bdocker(d)?\b", command) is None, command


def test_render_defaults_to_buildspec_dir_at_the_repository_root(tmp_path: Path) -> None:
    section = "codebuild:\n  install: pip install ./imgbuild\n  buildspec_dir: ci/specs\n"
    config = write_config(tmp_path / "repo" / "apps" / "shop", section)
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True, timeout=30)
    result = render_cli(config)
    assert result.returncode == 0, result.stderr
    spec = tmp_path / "repo" / "ci" / "specs" / "pr.yml"
    text = spec.read_text()
    assert text.startswith(
        "# Generated by `imgbuild codebuild render` from apps/shop/imgbuild.yaml"
    )
    doc = yaml.safe_load(text)
    assert doc["env"]["variables"]["IMGBUILD_CONFIG"] == "apps/shop/imgbuild.yaml"
    assert commands(doc, "install") == ["pip install ./imgbuild"]
    assert f"wrote {spec}" in result.stderr


def test_checked_in_example_buildspecs_are_current(dev: DevEnv, tmp_path: Path) -> None:
    """buildspecs/ is `render` of the example config; re-render it after changing either."""
    result = render_cli(EXAMPLE / "imgbuild.yaml", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for kind in KINDS:
        checked_in = (REPO / "buildspecs" / f"{kind}.yml").read_text()
        assert checked_in == (tmp_path / f"{kind}.yml").read_text(), (
            f"buildspecs/{kind}.yml is stale: run "
            "`imgbuild -c examples/hello/imgbuild.yaml codebuild render`"
        )
        assert validate(yaml.safe_load(checked_in)) == []
    config = configmod.resolve(EXAMPLE / "imgbuild.yaml")
    assert repo.config_in_repo(config) == "examples/hello/imgbuild.yaml"


# --- with a verify: section ----------------------------------------------------------------------

VERIFY_SECTION = "verify:\n  smoke:\n    path: /up\n"


def write_verify_config(root: Path, codebuild: str = FULL_SECTION) -> Path:
    """The shop config with a minimal `verify:` section (what makes the buildspecs verify)."""
    return write_config(root, codebuild + VERIFY_SECTION)


@pytest.fixture
def verified(tmp_path: Path) -> dict[str, dict[str, Any]]:
    config = write_verify_config(tmp_path / "shop")
    result = render_cli(config, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    return {k: yaml.safe_load((tmp_path / "out" / f"{k}.yml").read_text()) for k in KINDS}


def test_without_verify_nothing_verifies(rendered: dict[str, dict[str, Any]]) -> None:
    for kind, doc in rendered.items():
        assert "verify" not in yaml.safe_dump(doc).lower(), kind
        assert list(doc["reports"]) == ["size"]


def test_verified_buildspecs_are_valid_0_2(verified: dict[str, dict[str, Any]]) -> None:
    for kind, doc in verified.items():
        assert validate(doc) == [], kind


def test_pr_and_main_verify_before_pushing(verified: dict[str, dict[str, Any]]) -> None:
    pr, main = (commands(verified[k], "build")[0] for k in ("pr", "main"))
    assert pr.startswith(SELECT + " app --push --verify --no-release-tags --json > ")
    assert main.startswith(SELECT + " app --push --verify --json > ")


def test_only_the_batch_app_entry_verifies(verified: dict[str, dict[str, Any]]) -> None:
    batch = verified["batch"]
    graph = {e["identifier"]: e["env"]["variables"] for e in batch["batch"]["build-graph"]}
    assert graph == {
        "ruby": {"IMGBUILD_LAYER": "ruby"},
        "base": {"IMGBUILD_LAYER": "base"},
        "app": {"IMGBUILD_LAYER": "app", "IMGBUILD_VERIFY": "1"},
    }
    build = commands(batch, "build")[0]
    assert '"$IMGBUILD_RELEASE_TAGS" ${IMGBUILD_VERIFY:+--verify} --json' in build


@pytest.mark.parametrize(("value", "flag"), [("1", ["--verify"]), (None, [])])
def test_the_batch_flag_expands_to_nothing_without_the_variable(
    verified: dict[str, dict[str, Any]], tmp_path: Path, value: str | None, flag: list[str]
) -> None:
    """Run the batch build command in bash with an `imgbuild` that prints its arguments."""
    build = commands(verified["batch"], "build")[0]
    script = f'imgbuild() {{ printf "%s\\n" "$@"; }}\n{build}\n'
    env = {"PATH": "/usr/bin:/bin", "IMGBUILD_REPORT_DIR": str(tmp_path), "IMGBUILD_LAYER": "app"}
    env |= {"IMGBUILD_CONFIG": "imgbuild.yaml", "IMGBUILD_RELEASE_TAGS": "--no-release-tags"}
    if value is not None:
        env["IMGBUILD_VERIFY"] = value
    subprocess.run(["bash", "-c", script], env=env, check=True, timeout=30)
    args = (tmp_path / "build.json").read_text().splitlines()
    assert args == ["-c", "imgbuild.yaml", "app", "--push", "--no-release-tags", *flag, "--json"]


def test_verify_junit_is_a_second_report_group(verified: dict[str, dict[str, Any]]) -> None:
    for doc in verified.values():
        assert doc["reports"]["tests"] == {
            "files": ["**/*.xml"],
            "base-directory": "imgbuild-reports/verify",
            "file-format": "JUNITXML",
            "discard-paths": "no",
        }
        assert list(doc["reports"]) == ["size", "tests"]


def test_a_size_group_named_tests_leaves_verify_the_key_verify_tests(tmp_path: Path) -> None:
    config_path = write_verify_config(tmp_path / "shop", FULL_SECTION + "  report_group: tests\n")
    config = configmod.resolve(config_path, env={})
    assert buildspec.report_keys(config) == {"size": "tests", "tests": "verify-tests"}
    reports = buildspec.document(config, "pr")["reports"]
    assert reports["tests"]["files"] == ["size.xml"]
    assert reports["verify-tests"]["base-directory"] == "imgbuild-reports/verify"
