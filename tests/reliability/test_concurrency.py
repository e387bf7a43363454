"""Issue 7, concurrency: four `imgbuild app --push` at once on one daemon and one registry all
succeed, the shared history file ends with four whole records, every cache file parses, and the
registry holds every image the runs reported, blobs included."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, layers_by_name
from tests.registry_fixtures import (  # noqa: F401 - fixtures, requested by name
    ScratchRegistry,
    registry_digest,
    scratch_registry_fixture,
)

from .conftest import OwnImages
from .support import cache_problems, history_records, manifest_problems, registry_problems

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUNS = 4
RUN_SECONDS = 600


def _start(project: Project, config: Path, registry: str, log: Path) -> subprocess.Popen[str]:
    command = ["-c", str(config), "--registry", registry, "app", "--push", "--json"]
    with log.open("w") as stderr, log.with_suffix(".json").open("w") as stdout:
        return subprocess.Popen(
            [sys.executable, "-m", "buildkit", *command],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=project.env(),
            text=True,
        )


def _run_all(
    project: Project, configs: list[Path], registry: str, tmp_path: Path
) -> list[dict[str, dict[str, Any]]]:
    """Start one run per config at once; wait for all (bounded); return their --json layers."""
    logs = [tmp_path / f"run-{i}.log" for i in range(len(configs))]
    processes = [
        _start(project, config, registry, log) for config, log in zip(configs, logs, strict=True)
    ]
    deadline = time.monotonic() + RUN_SECONDS
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    results = []
    for number, (process, log) in enumerate(zip(processes, logs, strict=True)):
        stderr = log.read_text(errors="replace")
        assert process.returncode == 0, f"run {number}: exit {process.returncode}\n{stderr[-3000:]}"
        assert "Traceback" not in stderr
        results.append(layers_by_name(json.loads(log.with_suffix(".json").read_text())))
    return results


def _history_via_cli(project: Project, config: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(config), "report", "--history", "--json"],
        capture_output=True,
        text=True,
        env=project.env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads(result.stdout)
    assert isinstance(records, list)
    return records


def _check_after(
    project: Project, config: Path, registry: str, runs: list[dict[str, dict[str, Any]]]
) -> None:
    assert cache_problems(project.cache_dir) == []
    records = history_records(project.cache_dir)
    assert len(records) == RUNS, f"{len(records)} history records for {RUNS} runs"
    for record in records:
        assert record.get("schema") == "imgbuild.history/v1"
        assert [image["layer"] for image in record["images"]] == ["ruby", "base", "app"]
    assert len(_history_via_cli(project, config)) == RUNS
    # What every run reported is in the registry, whole, whatever the others did meanwhile.
    for number, layers in enumerate(runs):
        for name, layer in layers.items():
            assert layer["digest"], f"run {number}: {name} has no digest"
            repo = f"hello-{name}"
            assert manifest_problems(registry, repo, layer["digest"]) == [], f"run {number}"
    assert registry_problems(registry) == []


def test_four_identical_runs_at_once_from_an_empty_registry(
    project: Project, scratch_registry: ScratchRegistry, own_images: OwnImages, tmp_path: Path
) -> None:
    """Same app, same change, same cache dir: the four race on every build, push and file."""
    registry = own_images.under(scratch_registry.address)
    (project.root / "lib" / "concurrent.rb").write_text(f"# {time.time_ns()}\n")
    runs = _run_all(project, [project.config] * RUNS, registry, tmp_path)
    _check_after(project, project.config, registry, runs)
    # Each content tag, and `latest`, points at what one of the runs pushed. (Two pushes of one
    # image at once may upload its layers compressed differently, so the runs' digests may differ.)
    for name in ("ruby", "base", "app"):
        tag = runs[0][name]["image"].rpartition(":")[2]
        reported = {run[name]["digest"] for run in runs}
        assert registry_digest(registry, f"hello-{name}", tag) in reported, name
        assert registry_digest(registry, f"hello-{name}", "latest") in reported, name


def test_four_different_apps_at_once_share_a_cache_dir(
    project: Project, scratch_registry: ScratchRegistry, own_images: OwnImages, tmp_path: Path
) -> None:
    """Four checkouts with different changes, one cache dir (history, state, digests), one
    registry that already has the chain: four app images, each under its own tag."""
    registry = own_images.under(scratch_registry.address)
    first = project.run("--registry", registry, "app", "--push", timeout=RUN_SECONDS)
    assert first.returncode == 0, first.stderr[-3000:]
    for path in project.cache_dir.rglob("*.jsonl"):
        path.unlink()  # count only the concurrent runs' records
    configs = []
    for number in range(RUNS):
        root = tmp_path / f"checkout-{number}" / "hello"
        shutil.copytree(project.root, root)
        (root / "lib" / "concurrent.rb").write_text(f"# checkout {number} {time.time_ns()}\n")
        configs.append(root / "imgbuild.yaml")
    runs = _run_all(project, configs, registry, tmp_path)
    _check_after(project, configs[0], registry, runs)
    tags = {run["app"]["image"].rpartition(":")[2] for run in runs}
    assert len(tags) == RUNS, "four different changes must give four app keys"
    for run in runs:
        assert run["app"]["built"]
        assert run["app"]["pushed"]
        assert not run["ruby"]["built"]
        assert not run["base"]["built"]
        tag = run["app"]["image"].rpartition(":")[2]
        assert registry_digest(registry, "hello-app", tag) == run["app"]["digest"]
