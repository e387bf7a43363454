"""`imgbuild verify` end to end on the real daemon, with real PostgreSQL and Redis (the dev set-up's
service images, built from Debian's packages), on examples/notes: the tests pass in the test
variant, a failing test fails verify and shows in JUnit, SIGINT and bad input leave nothing
behind, two verifies run side by side, `app --push --verify` pushes only a verified image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from buildkit.engine import containers
from tests.conftest import REPO, DevEnv, Project
from tests.test_chain_integration import docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOTES = REPO / "examples" / "notes"
FAILING_TEST = """\
require_relative "test_helper"

class DeliberatelyFailingTest < Minitest::Test
  def test_the_answer_is_wrong
    assert_equal 41, 6 * 7, "deliberate failure"
  end
end
"""


def _notes(tmp_path: Path, dev: DevEnv, name: str = "notes") -> Project:
    import shutil

    for var in ("IMGBUILD_DEV_POSTGRES_IMAGE", "IMGBUILD_DEV_REDIS_IMAGE"):
        if not os.environ.get(var):
            pytest.fail(
                f"{var} is not set: the dev service images are missing; run `make services`"
            )
    root = tmp_path / name
    shutil.copytree(NOTES, root, ignore=shutil.ignore_patterns("*.log", "test-results"))
    project = Project(root=root, cache_dir=tmp_path / f"cache-{name}", dev=dev, name=name)
    if name != "notes":
        project.edit_config("name: notes\n", f"name: {name}\n")
    return project


@pytest.fixture
def notes(tmp_path: Path, dev: DevEnv) -> Project:
    return _notes(tmp_path, dev)


def _leftovers() -> set[str]:
    """Every container, network and volume imgbuild verify made (by its labels) or any volume."""
    label = f"label={containers.RUN_LABEL}"
    found = {f"container:{i}" for i in docker("ps", "-aq", "--filter", label).stdout.split()}
    found |= {
        f"network:{i}" for i in docker("network", "ls", "-q", "--filter", label).stdout.split()
    }
    found |= {f"volume:{v}" for v in docker("volume", "ls", "-q").stdout.split()}
    return found


def _in_registry(image: str) -> bool:
    host, _, rest = image.partition("/")
    repo, _, tag = rest.rpartition(":")
    request = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("imgbuild: error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    return errors[0]


def test_verify_runs_the_tests_against_real_postgres_and_redis(notes: Project) -> None:
    before = _leftovers()
    out = notes.root / "verify-out"
    result = notes.run("verify", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)["verify"]

    assert set(report["services"]) == {"db", "cache"}
    assert report["smoke"]["status"] == 200
    assert report["smoke"]["check"] == "GET /up"
    tests = report["tests"]
    assert tests["exit_code"] == 0
    assert tests["failures"] == 0
    assert tests["errors"] == 0
    assert tests["tests"] >= 5, tests
    assert "-app-test:" in tests["image"]
    junit = [Path(p) for p in tests["junit"]]
    assert junit
    assert all(p.is_file() and p.is_relative_to(out) for p in junit)
    cases = [c.get("name") for p in junit for c in ET.parse(p).getroot().iter("testcase")]
    assert len(cases) == tests["tests"]
    own = ET.parse(out / "imgbuild-verify.xml").getroot()
    assert [c.get("name") for c in own.iter("testcase")] == ["smoke"]
    assert (out / "app.log").read_text().strip()
    # the production image holds no test gems; the test variant does
    gems = "find /usr/local/bundle -maxdepth 4 -name 'minitest-*'"
    production = docker("run", "--rm", "--entrypoint", "sh", report["smoke"]["image"], "-c", gems)
    variant = docker("run", "--rm", "--entrypoint", "sh", tests["image"], "-c", gems)
    assert "minitest" not in production.stdout
    assert "minitest" in variant.stdout
    assert _leftovers() <= before


def test_a_failing_test_fails_verify_names_the_test_and_writes_junit(notes: Project) -> None:
    (notes.root / "test" / "deliberately_failing_test.rb").write_text(FAILING_TEST)
    out = notes.root / "verify-out"

    result = notes.run("verify", "--tests-only", "--out", str(out), "--json")

    assert result.returncode == 14, result.stderr[-4000:]
    document = json.loads(result.stdout)["verify"]  # the JSON comes also when it failed
    assert document["passed"] is False
    assert document["tests"]["failures"] == 1
    assert [f["name"] for f in document["tests"]["failed"]] == [
        "DeliberatelyFailingTest#test_the_answer_is_wrong"
    ]
    line = _one_error_line(result.stderr)
    assert "DeliberatelyFailingTest#test_the_answer_is_wrong" in line
    assert str(out) in line
    failed = [
        case
        for path in (out / "tests").rglob("*.xml")
        for case in ET.parse(path).getroot().iter("testcase")
        if case.find("failure") is not None
    ]
    assert [c.get("name") for c in failed] == ["test_the_answer_is_wrong"]
    assert "deliberate failure" in (failed[0].find("failure").get("message") or "")  # type: ignore[union-attr]


def _owner(pid: int) -> str:
    return f"label={containers.OWNER_LABEL}={containers.owner(pid)}"


def _wait_for_services(pid: int, deadline_s: float = 600) -> set[str]:
    """Until the verify process `pid` has a running service container (its owner label); the
    names of the volumes its containers use (the postgres image declares one)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        running = docker("ps", "-q", "--filter", _owner(pid)).stdout.split()
        if running:
            mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", *running)
            return set(mounts.stdout.split())
        time.sleep(0.2)  # polling the daemon for the container, not waiting in its place
    pytest.fail("verify never started its services")


def _left_by(pid: int, volumes: set[str]) -> set[str]:
    """What the verify process `pid` created and is still there."""
    found = {f"container:{i}" for i in docker("ps", "-aq", "--filter", _owner(pid)).stdout.split()}
    networks = docker("network", "ls", "-q", "--filter", _owner(pid)).stdout.split()
    found |= {f"network:{i}" for i in networks}
    found |= {f"volume:{v}" for v in set(docker("volume", "ls", "-q").stdout.split()) & volumes}
    return found


def test_sigint_during_a_run_leaves_no_container_network_or_volume(notes: Project) -> None:
    notes.run("verify", "--tests-only")  # builds the test variant: the SIGINT lands in the run
    proc = subprocess.Popen(
        [sys.executable, "-m", "buildkit", "-c", str(notes.config), "verify"],
        env=notes.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        volumes = _wait_for_services(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert volumes  # the postgres service's anonymous volume: it must go with its container
    assert _left_by(proc.pid, volumes) == set()


def test_a_run_killed_with_sigkill_is_cleaned_up_by_the_next(notes: Project) -> None:
    notes.run("verify", "--tests-only")
    proc = subprocess.Popen(
        [sys.executable, "-m", "buildkit", "-c", str(notes.config), "verify", "--tests-only"],
        env=notes.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    volumes = _wait_for_services(proc.pid)
    proc.kill()
    proc.wait(timeout=60)
    assert _left_by(proc.pid, volumes)  # SIGKILL: nothing could clean up

    result = notes.run("verify", "--smoke-only")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "left behind" in result.stderr
    assert _left_by(proc.pid, volumes) == set()


def test_two_verifies_of_two_apps_run_side_by_side(tmp_path: Path, dev: DevEnv) -> None:
    apps = [_notes(tmp_path, dev, "notes"), _notes(tmp_path, dev, "notes-b")]
    apps[0].run("verify", "--tests-only")  # the shared Ruby and base steps are in the cache
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def verify(app: Project) -> None:
        results[app.name] = app.run("verify")

    threads = [threading.Thread(target=verify, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=1800)

    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    assert set(results) == {"notes", "notes-b"}


@pytest.mark.parametrize(
    ("edit", "code", "words"),
    [
        (
            (
                "image: ${IMGBUILD_DEV_REDIS_IMAGE:-redis:7}",
                "image: 127.0.0.1:5000/no-such-team/redis:1",
            ),
            16,
            "verify.services.cache.image",
        ),
        (
            ("    cache:\n", '    cache:\n      ready: {command: "false", timeout: 3}\n'),
            17,
            "verify.services.cache: not ready after 3s",
        ),
        (("command: bin/test", "command: bin/no-such-test-runner"), 18, "bin/no-such-test-runner"),
    ],
    ids=["unknown-service-image", "never-ready", "no-test-command"],
)
def test_bad_input_is_one_line_a_distinct_code_and_nothing_left(
    notes: Project, edit: tuple[str, str], code: int, words: str
) -> None:
    notes.edit_config(*edit)
    before = _leftovers()

    result = notes.run("verify", "--tests-only")

    assert result.returncode == code, result.stderr[-3000:]
    assert words in _one_error_line(result.stderr)
    assert _leftovers() == before


def test_app_push_verify_pushes_only_a_verified_image(notes: Project) -> None:
    (notes.root / "test" / "deliberately_failing_test.rb").write_text(FAILING_TEST)
    plan = json.loads(notes.run("plan", "--json").stdout)
    app_image = plan["layers"][-1]["image"]

    failed = notes.run("app", "--push", "--verify", "--json")

    assert failed.returncode == 14, failed.stderr[-3000:]
    assert not _in_registry(app_image)
    # the report still comes, with the failed test in it (console and JSON)
    report = json.loads(failed.stdout)["report"]
    assert report["verify"]["passed"] is False
    assert "DeliberatelyFailingTest#test_the_answer_is_wrong" in failed.stderr
    assert [f["name"] for f in report["verify"]["tests"]["failed"]] == [
        "DeliberatelyFailingTest#test_the_answer_is_wrong"
    ]

    (notes.root / "test" / "deliberately_failing_test.rb").unlink()
    done = notes.run("app", "--push", "--verify", "--json")

    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["report"]["verify"]["tests"]["failures"] == 0
    pushed = {layer["name"]: layer for layer in data["layers"]}
    assert pushed["app"]["digest"], data["layers"]
    assert _in_registry(pushed["app"]["image"])
