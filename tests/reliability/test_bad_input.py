"""Issue 7, bad input: every case of the corpus in bad_inputs/ (cases.yaml says what each one
writes, runs and expects) ends in one clear error line with its exit code, no traceback, no new or
partial file in the app or the cache, and nothing pushed."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DevEnv, Project
from tests.registry_fixtures import ScratchRegistry, scratch_registry_fixture  # noqa: F401

from .support import assert_one_line_error, registry_tags, snapshot_diff, temp_files, tree_snapshot

pytestmark = pytest.mark.docker

CORPUS = Path(__file__).parent / "bad_inputs"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
DEFAULT_ARGS = ["--registry", "{registry}", "app", "--push"]
#: A config error is found before anything slow; a failing build (cached up to the failing step)
#: takes longer. Both well within a minute.
SECONDS = {3: 15.0, 4: 15.0}
BUILD_SECONDS = 120.0


def test_corpus_has_at_least_30_distinct_cases() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)
    files = {case["file"] for case in CASES}
    assert len(files) == len(CASES), "one corpus file per case"
    for case in CASES:
        assert (CORPUS / case["file"]).is_file(), case["file"]
        assert isinstance(case["exit"], int), case["id"]
        assert case["message"], case["id"]


def _tarball_sha256(dev: DevEnv) -> str:
    tarball = dev.home / "ruby" / "ruby-3.3.8.tar.gz"
    return hashlib.sha256(tarball.read_bytes()).hexdigest()


def _prepare(project: Project, case: dict[str, Any], dev: DevEnv) -> None:
    data = (CORPUS / case["file"]).read_bytes()
    if b"{ruby_sha256}" in data:
        data = data.replace(b"{ruby_sha256}", _tarball_sha256(dev).encode())
    (project.root / case.get("target", "imgbuild.yaml")).write_bytes(data)
    for target, source in (case.get("extra_files") or {}).items():
        shutil.copyfile(CORPUS / source, project.root / target)
    for name in case.get("remove") or ():
        (project.root / name).unlink()


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_gives_one_line_and_its_exit_code(
    case: dict[str, Any], project: Project, scratch_registry: ScratchRegistry, dev: DevEnv
) -> None:
    _prepare(project, case, dev)
    before = tree_snapshot(project.root)
    args = [
        arg.format(registry=scratch_registry.address, root=project.root)
        for arg in case.get("args") or DEFAULT_ARGS
    ]
    limit = SECONDS.get(case["exit"], BUILD_SECONDS)
    started = time.monotonic()
    result = project.run(*args, extra_env=case.get("env"), timeout=limit + 30)
    elapsed = time.monotonic() - started

    line = assert_one_line_error(result, case["exit"], case["message"])
    if case.get("line") == "any":
        assert re.search(r"imgbuild\.yaml:\d+", line), line
    elif "line" in case:
        assert f"{project.config}:{case['line']}:" in line, line
    assert elapsed < limit, f"took {elapsed:.1f}s"
    assert snapshot_diff(before, tree_snapshot(project.root)) == []
    assert temp_files(project.cache_dir) == []
    assert registry_tags(scratch_registry.address) == {}, "something was pushed"
