"""The generated buildspecs of an app with a `verify:` section, run the way CodeBuild runs them.

The same mini CodeBuild as tests/codebuild/test_codebuild_run.py (a build container with the
host's docker socket, the buildspec's phases run by tests/codebuild_runner.py, imgbuild installed
from a wheel of this checkout), on a checkout of examples/notes: PostgreSQL and Redis services
(the dev set-up's images, named by IMGBUILD_DEV_POSTGRES_IMAGE / IMGBUILD_DEV_REDIS_IMAGE, which
reach the build as project environment variables) and minitest tests. The buildspecs build with
`imgbuild app --push --verify`, so the build phase starts containers on the daemon:

- a pull request whose tests pass: verified, pushed, JUnit where the `tests` reports group looks;
- a push to main of a commit with a failing test: the build phase fails, nothing of the chain is
  pushed, no release tag moves, the JUnit has the failure;
- after each build, nothing the build's verify run created (labels `io.imgbuild.verify.*`) is left.

The chain is named `cbverify`; its ruby, base and test-variant base are copied inside the registry
from the example's own `notes-*` (or `hello-*`) repositories under the same content keys, so
nothing is recompiled. The build container gets a host name of its own, as a CodeBuild build
container has: with the host's (`--network host` alone) its verify would take this host's live
verify runs for its own dead ones (the owner label is host:pid, the pids are of another pid
namespace) and remove them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildkit.engine.containers import RUN_LABEL
from tests.codebuild.test_codebuild_run import (
    ACCOUNT,
    _assert_build_ok,
    _git,
    copy_image,
    docker,
    manifest_digest,
    run_in_container,
    runner_image,  # noqa: F401  (a fixture)
    wheelhouse,  # noqa: F401  (a fixture)
)
from tests.codebuild_runner import BuildResult
from tests.conftest import REPO, DevEnv

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NAME = "cbverify"
APP = "examples/notes"
NOTES = REPO / APP
SERVICE_IMAGES = ("IMGBUILD_DEV_POSTGRES_IMAGE", "IMGBUILD_DEV_REDIS_IMAGE")
FAILING = "DeliberatelyFailingTest#test_the_answer_is_wrong"
FAILING_TEST = """\
# frozen_string_literal: true

require_relative "test_helper"

class DeliberatelyFailingTest < Minitest::Test
  def test_the_answer_is_wrong
    assert_equal 41, 6 * 7, "deliberate failure"
  end
end
"""


def _dev_value(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: the dev service images are missing; run `make services`")
    return value


def make_notes_checkout(root: Path, dev: DevEnv) -> str:
    """The repository CodeBuild would clone: examples/notes renamed to the `cbverify` chain, with
    a codebuild section (the dev set-up's service images among the project's variables), a
    unique app file (the app is really built) and buildspecs/ rendered by imgbuild."""
    app = root / APP
    shutil.copytree(NOTES, app, ignore=shutil.ignore_patterns("*.log", "test-results"))
    example = (app / "imgbuild.yaml").read_text()
    assert "\nname: notes\n" in example
    assert "\nverify:\n" in example
    variables = {
        "IMGBUILD_DEV_HOME": str(dev.home),
        "IMGBUILD_DEV_REGISTRY": dev.registry,
        "IMGBUILD_DEV_BASE_IMAGE": dev.base_image,
        **{name: _dev_value(name) for name in SERVICE_IMAGES},
    }
    (app / "imgbuild.yaml").write_text(
        example.replace("\nname: notes\n", f"\nname: {NAME}\n") + "codebuild:\n"
        "  github: https://github.com/acme/notes\n"
        f"  service_role: arn:aws:iam::{ACCOUNT}:role/{NAME}-codebuild\n"
        "  install: pip install --no-index --find-links /wheels imgbuild\n"
        "  env:\n" + "".join(f"    {k}: {v}\n" for k, v in variables.items())
    )
    (app / "build-marker.txt").write_text(f"{uuid.uuid4()}\n")
    _git(root, "init", "-q", "-b", "main")
    rendered = subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(app / "imgbuild.yaml"), "codebuild", "render"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert (root / "buildspecs" / "pr.yml").is_file()
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "notes")
    return _git(root, "rev-parse", "HEAD")


def _config(root: Path) -> Any:
    from buildkit.config import loading as configmod

    return configmod.resolve(root / APP / "imgbuild.yaml")


def _images(root: Path) -> tuple[list[str], list[str]]:
    """(the chain's images, the test variant's images) by content key, as the build names them."""
    from buildkit.chain import layers
    from buildkit.run.verify import test_variant

    config = _config(root)
    return (
        [spec.image for spec in layers.chain(config)],
        [spec.image for spec in layers.chain(test_variant(config))],
    )


def _split(image: str) -> tuple[str, str]:
    repo, _, tag = image.split("/", 1)[1].rpartition(":")
    return repo, tag


def seed_notes_chain(root: Path, registry: str) -> None:
    """cbverify-ruby, -base and -base-test: the example's images under the same content keys."""
    chain, variant = _images(root)
    for image in (chain[0], chain[1], variant[1]):
        dest, tag = _split(image)
        suffix = dest.removeprefix(f"{NAME}-")
        if manifest_digest(registry, dest, tag) is not None:
            continue
        for source in (f"notes-{suffix}", f"hello-{suffix}"):
            if manifest_digest(registry, source, tag):
                copy_image(registry, source, dest, tag)
                break


@pytest.fixture
def notes_checkout(tmp_path: Path, dev: DevEnv) -> tuple[Path, str]:
    root = tmp_path / "src"
    commit = make_notes_checkout(root, dev)
    seed_notes_chain(root, dev.registry)
    return root, commit


# -- what a verify run leaves on the daemon ---------------------------------------------------


def _labelled() -> set[tuple[str, str, str]]:
    """(kind, id, run) of every container and network carrying verify's run label."""
    template = f'{{{{.ID}}}} {{{{.Label "{RUN_LABEL}"}}}}'
    found: set[tuple[str, str, str]] = set()
    for kind, command in (("container", ("ps", "-a")), ("network", ("network", "ls"))):
        listed = docker(*command, "--no-trunc", f"--filter=label={RUN_LABEL}", "--format", template)
        for line in listed.splitlines():
            ident, _, run = line.partition(" ")
            found.add((kind, ident, run))
    return found


def _events(since: float, until: float, *filters: str) -> list[dict[str, Any]]:
    listed = docker(
        "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", *filters,
        "--format", "{{json .}}",
    )  # fmt: skip
    return [json.loads(line) for line in listed.splitlines() if line.strip()]


def _created_by(run: str, since: float, until: float) -> dict[str, set[str]]:
    """What verify run `run` created, from the daemon's events: its containers (by their run
    label), its network (by its name) and the volumes mounted into its containers."""
    created = _events(
        since, until, "--filter", "type=container", "--filter", "event=create",
        "--filter", f"label={RUN_LABEL}={run}",
    )  # fmt: skip
    containers = {event["Actor"]["ID"] for event in created}
    networks = {
        event["Actor"]["ID"]
        for event in _events(since, until, "--filter", "type=network", "--filter", "event=create")
        if event["Actor"]["Attributes"].get("name") == f"imgbuild-verify-{run}"
    }
    volumes = {
        event["Actor"]["ID"]
        for event in _events(since, until, "--filter", "type=volume", "--filter", "event=mount")
        if event["Actor"]["Attributes"].get("container") in containers
    }
    return {"container": containers, "network": networks, "volume": volumes}


def _assert_nothing_left(
    build: dict[str, Any], before: set[tuple[str, str, str]], since: float, until: float
) -> dict[str, set[str]]:
    """The build's verify run created its network and containers, and none of them (nor their
    volumes) is left; no other verify run of this chain appeared either."""
    run = build["report"]["verify"]["run"]
    assert re.fullmatch(rf"{NAME}-[0-9a-f]{{8}}", run), run
    created = _created_by(run, since, until)
    # db, cache, the app (smoke) and the tests, at least; one network
    assert len(created["container"]) >= 4, created
    assert len(created["network"]) == 1, created
    now = _labelled()
    assert {item for item in now if item[2] == run} == set()
    assert {item for item in now - before if item[2].startswith(f"{NAME}-")} == set()
    present = {
        "container": set(docker("ps", "-aq", "--no-trunc").split()),
        "network": set(docker("network", "ls", "-q", "--no-trunc").split()),
        "volume": set(docker("volume", "ls", "-q").split()),
    }
    for kind, ids in created.items():
        assert not ids & present[kind], f"{kind}s of verify run {run} left behind"
    counts = ", ".join(f"{len(ids)} {kind}(s)" for kind, ids in created.items())
    print(f"[{NAME}] verify run {run} created {counts}; none left", file=sys.stderr)
    return created


# -- a build ----------------------------------------------------------------------------------


def run_build(
    image: str, root: Path, wheels: Path, dev: DevEnv, kind: str, commit: str
) -> tuple[BuildResult, float, float, float]:
    """Run buildspecs/<kind>.yml in a build container of its own host name; (result, seconds,
    start, end) with start/end on the daemon's clock (this machine's) for its events."""
    start = time.time()
    result = run_in_container(
        image, root, wheels, dev, kind, commit,
        app=APP, docker_args=("--hostname", f"codebuild-{uuid.uuid4().hex[:12]}"),
    )  # fmt: skip
    end = time.time()
    print(f"\n[{NAME}] {kind} build: {end - start:.1f}s wall; {result.phases}", file=sys.stderr)
    return result, end - start, start - 1, end + 1  # a second's margin for the events


def _build_command(spec: dict[str, Any]) -> str:
    commands = [c for c in spec["phases"]["build"]["commands"] if " app --push" in c]
    assert len(commands) == 1, spec["phases"]["build"]["commands"]
    return str(commands[0])


def _junit_root(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag in ("testsuites", "testsuite"), f"{path}: <{root.tag}> is not JUnit"
    return root


def _tests_group_files(root: Path, spec: dict[str, Any]) -> set[Path]:
    """The files the buildspec's `tests` reports group publishes: its globs resolved against its
    base-directory (relative to the source root), as CodeBuild resolves them."""
    group = spec["reports"]["tests"]
    assert group["file-format"] == "JUNITXML"
    assert group["base-directory"] == "imgbuild-reports/verify"
    assert group["discard-paths"] == "no"
    base = root / group["base-directory"]
    return {path for pattern in group["files"] for path in base.glob(pattern) if path.is_file()}


def test_pull_request_build_verifies_then_pushes_and_publishes_the_junit(
    runner_image: str,  # noqa: F811
    wheelhouse: Path,  # noqa: F811
    dev: DevEnv,
    notes_checkout: tuple[Path, str],
) -> None:
    root, commit = notes_checkout
    spec = yaml.safe_load((root / "buildspecs" / "pr.yml").read_text())
    command = _build_command(spec)
    assert "--verify" in command.split()
    app_repo, app_key = _split(_images(root)[0][-1])
    latest_before = manifest_digest(dev.registry, app_repo, "latest")
    before = _labelled()

    result, _, since, until = run_build(runner_image, root, wheelhouse, dev, "pr", commit)

    context = _assert_build_ok(result, root, dev.registry, name=NAME)
    assert context["IMGBUILD_TRIGGER"] == "pr/42"
    assert ("build", command, 0) in result.commands
    assert f"Running command {command}" in result.text()
    # verified, then pushed under its key; `latest` stays (a pull request)
    build = json.loads((root / "imgbuild-reports" / "build.json").read_text())
    verified = build["report"]["verify"]
    assert verified["passed"] is True, verified
    assert set(verified["services"]) == {"db", "cache"}
    assert verified["smoke"]["status"] == 200
    assert verified["tests"]["failures"] == verified["tests"]["errors"] == 0
    assert verified["tests"]["tests"] >= 5, verified["tests"]
    digest = result.exported["IMGBUILD_RESULT_APP_DIGEST"]
    assert result.exported["IMGBUILD_RESULT_APP_IMAGE"] == f"{dev.registry}/{app_repo}:{app_key}"
    assert manifest_digest(dev.registry, app_repo, app_key) == digest
    assert manifest_digest(dev.registry, app_repo, "latest") == latest_before
    # the JUnit: imgbuild's own, the app's (copied out of the tests container), both published
    out = root / "imgbuild-reports" / "verify"
    own = _junit_root(out / "imgbuild-verify.xml")
    assert [case.get("name") for case in own.iter("testcase")] == ["smoke"]
    app_junit = out / "tests" / "tmp" / "test-results" / "junit.xml"
    cases = list(_junit_root(app_junit).iter("testcase"))
    assert len(cases) == verified["tests"]["tests"]
    assert not [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    assert "RoutesTest" in {case.get("classname") for case in cases}
    published = _tests_group_files(root, spec)
    assert published == {out / "imgbuild-verify.xml", app_junit}
    for path in published:
        _junit_root(path)
    _assert_nothing_left(build, before, since, until)


def test_main_build_of_a_failing_test_fails_pushes_nothing_and_reports_the_failure(
    runner_image: str,  # noqa: F811
    wheelhouse: Path,  # noqa: F811
    dev: DevEnv,
    notes_checkout: tuple[Path, str],
) -> None:
    """A push to main (the build that would move `latest` and `main`) of a commit whose tests
    fail: the build phase fails at the build command, which aborts the build (`on-failure:
    ABORT`: no exports, no post_build), and nothing of the chain is pushed."""
    root, _ = notes_checkout
    (root / APP / "test" / "deliberately_failing_test.rb").write_text(FAILING_TEST)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "a failing test")
    commit = _git(root, "rev-parse", "HEAD")
    spec = yaml.safe_load((root / "buildspecs" / "main.yml").read_text())
    command = _build_command(spec)
    assert "--verify" in command.split()
    assert spec["phases"]["build"]["on-failure"] == "ABORT"
    chain, variant = _images(root)
    app_repo, app_key = _split(chain[-1])
    assert manifest_digest(dev.registry, app_repo, app_key) is None  # a new key: not yet built
    tags_before = {tag: manifest_digest(dev.registry, app_repo, tag) for tag in ("latest", "main")}
    before = _labelled()

    result, _, since, until = run_build(runner_image, root, wheelhouse, dev, "main", commit)

    log = result.text()
    assert result.exit_code == 1, log[-6000:]
    assert result.phases == {
        "install": "SUCCEEDED",
        "pre_build": "SUCCEEDED",
        "build": "FAILED",
        "post_build": "SKIPPED",
    }, log[-6000:]
    # it failed at the build command, with verify's exit code, naming the failed test
    assert [c for c in result.commands if c[0] == "build"] == [("build", command, 14)]
    assert f"Command did not exit successfully {command} exit status 14" in log
    errors = [line for line in log.splitlines() if line.startswith("imgbuild: error:")]
    assert len(errors) == 1, log[-6000:]
    assert FAILING in errors[0]
    assert "Traceback" not in log
    # nothing of the chain pushed, no tag moved, nothing exported
    assert manifest_digest(dev.registry, app_repo, app_key) is None
    assert {tag: manifest_digest(dev.registry, app_repo, tag) for tag in tags_before} == tags_before
    assert result.exported["IMGBUILD_RESULT_APP_DIGEST"] == ""
    # the test variant is pushed as it is built, also when its tests then fail (docs/verify.md)
    assert manifest_digest(dev.registry, *_split(variant[-1])) is not None
    # the report still came, and the JUnit the `tests` group publishes has the failure
    build = json.loads((root / "imgbuild-reports" / "build.json").read_text())
    verified = build["report"]["verify"]
    assert verified["passed"] is False
    assert [f["name"] for f in verified["tests"]["failed"]] == [FAILING]
    assert not (root / "imgbuild-reports" / "size.xml").exists()  # no post_build
    out = root / "imgbuild-reports" / "verify"
    published = _tests_group_files(root, spec)
    assert out / "tests" / "tmp" / "test-results" / "junit.xml" in published
    failed = [
        case
        for path in published
        if path.is_relative_to(out / "tests")
        for case in _junit_root(path).iter("testcase")
        if case.find("failure") is not None
    ]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [tuple(FAILING.split("#"))]
    failure = failed[0].find("failure")
    assert failure is not None
    assert "deliberate failure" in (failure.get("message") or "")
    _assert_nothing_left(build, before, since, until)
