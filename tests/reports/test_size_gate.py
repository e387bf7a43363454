"""`imgbuild size check` on the real daemon and registry (issue 5's acceptance 2 and 5).

The baseline file lives outside the app's build context: inside it, it would be part of the app
image and every baseline update would rebuild the app.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import Project

pytestmark = [pytest.mark.docker, pytest.mark.engines]

XSD = Path(__file__).parents[1] / "data" / "reports" / "junit-10.xsd"
SIZE_REGRESSION_EXIT = 10


def push(project: Project) -> None:
    result = project.run("app", "--push")
    assert result.returncode == 0, result.stderr[-3000:]


def app_entry(baseline: Path) -> dict[str, int]:
    entry: dict[str, int] = json.loads(baseline.read_text())["images"]["app"]
    return entry


def valid_junit(path: Path) -> etree._ElementTree:
    document = etree.parse(str(path))
    etree.XMLSchema(etree.parse(str(XSD))).assertValid(document)
    return document


def test_a_20mb_file_fails_the_gate_removing_it_passes_and_shrinking_lowers_the_baseline(
    project: Project, tmp_path: Path
) -> None:
    baseline = tmp_path / "imgbuild-baseline.json"
    (project.root / "lib" / "nonce.rb").write_text(f"NONCE = {time.time_ns()}\n")
    # Removed at the end: big enough that the shrink outweighs any engine's near-empty delta
    # layer (a deletion builds on a new source snapshot), unlike one small source file.
    ballast = project.root / "lib" / "ballast.txt"
    ballast.write_text(os.urandom(150_000).hex())
    push(project)
    seeded = project.run("size", "check", "--baseline", str(baseline), "--update-baseline")
    assert seeded.returncode == 0, seeded.stderr
    before = app_entry(baseline)

    big = project.root / "lib" / "big.bin"
    big.write_bytes(os.urandom(20_000_000))
    push(project)
    junit = tmp_path / "size.xml"
    failed = project.run("size", "check", "--baseline", str(baseline), "--junit", str(junit))
    assert failed.returncode == SIZE_REGRESSION_EXIT, failed.stderr
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("imgbuild: error: size check failed")
    assert "app is" in error
    assert "the app layer (app source) grew +20.0 MB compressed" in error
    assert "/app/lib/big.bin 20.0 MB (new)" in error
    assert "Traceback" not in failed.stderr

    document = valid_junit(junit)
    failures = {f.getparent().get("name"): f.get("message") for f in document.iter("failure")}
    assert list(failures) == ["app: compressed growth ≤ 5.0% over the baseline"]
    assert "/app/lib/big.bin" in failures["app: compressed growth ≤ 5.0% over the baseline"]
    passed = [c for c in document.iter("testcase") if c.find("failure") is None]
    assert {c.get("classname") for c in passed} == {"imgbuild.size.ruby", "imgbuild.size.base"}

    refused = project.run("size", "check", "--baseline", str(baseline), "--update-baseline")
    assert refused.returncode == SIZE_REGRESSION_EXIT
    assert "the baseline was not updated" in refused.stderr
    assert app_entry(baseline) == before

    big.unlink()
    push(project)
    passed_again = project.run("size", "check", "--baseline", str(baseline))
    assert passed_again.returncode == 0, passed_again.stderr

    ballast.unlink()
    push(project)
    lowered = project.run("size", "check", "--baseline", str(baseline), "--update-baseline")
    assert lowered.returncode == 0, lowered.stderr
    after = app_entry(baseline)
    assert after["compressed_bytes"] < before["compressed_bytes"]
    assert after["uncompressed_bytes"] < before["uncompressed_bytes"]
    assert json.loads(baseline.read_text())["images"]["base"]["compressed_bytes"] > 0


def test_max_bytes_budget_from_the_config_names_the_largest_level(
    project: Project, tmp_path: Path
) -> None:
    project.config.write_text(
        project.config.read_text() + "budgets:\n  app: {max_bytes: 50MB, max_growth: null}\n"
    )
    push(project)
    missing = tmp_path / "no-baseline-yet.json"
    result = project.run("size", "check", "--baseline", str(missing))
    assert result.returncode == SIZE_REGRESSION_EXIT, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert "over max_bytes 50.0 MB" in error
    assert "the largest chain layer is os (OS base image)" in error
    assert "its largest files (uncompressed): /usr/" in error
    ok = project.run(
        "size",
        "check",
        "--baseline",
        str(missing),
        "--max-bytes",
        "1GB",
        "--metric",
        "uncompressed",
    )
    assert ok.returncode == 0, ok.stderr
    assert re.search(r"app is 1[78]\d\.\d MB", ok.stderr), ok.stderr  # 180 MB; 179.5 on engine 26
    assert "uncompressed, within max_bytes 1.0 GB" in ok.stderr


def test_bad_budget_flags_are_usage_errors(project: Project) -> None:
    result = project.run("size", "check", "--max-bytes", "lots")
    assert result.returncode == 2
    assert "350MB" in result.stderr
    growth = project.run("size", "check", "--max-growth", "5")
    assert growth.returncode == 2
    assert "5%" in growth.stderr


def test_report_junit_and_markdown_on_demand(project: Project, tmp_path: Path) -> None:
    push(project)
    junit = tmp_path / "report.xml"
    result = project.run(
        "report", "--markdown", "--junit", str(junit), "--baseline", str(tmp_path / "none.json")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"### imgbuild: `{project.name}` images")
    assert "| `app` |" in result.stdout
    document = valid_junit(junit)
    assert len(list(document.iter("testcase"))) == 3  # max_growth of ruby, base and app
    assert len(list(document.iter("skipped"))) == 3  # no baseline yet
