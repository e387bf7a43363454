"""Smoke run of the benchmark harness (`bench/run --quick`): it must keep working.

Nothing here asserts on time or on pass/fail of a target: the machine is shared and noisy. It
checks that the harness runs end to end and prints one table with every case and real numbers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROWS = (
    "P1 no-op",
    "P1 … one-shot process",
    "P2 one file changed",
    "P2 … vs naive",
    "P2 … a file deleted: new source snapshot",
    "P3 fresh daemon",
    "P4 one gem added",
    "P5 bytes pushed",
    "P5 … vs new layer + manifest + config",
    "P6 final app image size",
    "P7 hashing, cold",
    "P7 hashing, warm",
    "P7 … warm, stat walk",
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_quick_run_prints_every_row_with_numbers(dev: object, tmp_path: Path) -> None:
    out_json = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run"), "--quick", "--json", str(out_json)],
        capture_output=True,
        text=True,
        timeout=3600,  # a first run compiles the naive peer's Ruby once; runs queue on a lock
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    header = "| case | app | imgbuild | peer | ratio | target | result |"
    assert [line for line in table if line.startswith("| case ")] == [header, header]
    for name in ROWS:
        found = [line for line in table if line.startswith(f"| {name}")]
        assert len(found) == 2, f"row {name!r} not once per engine"
    machines = [line for line in proc.stdout.splitlines() if line.startswith("machine: cores ")]
    assert len(machines) == 2
    assert machines[0].endswith("engine-name system")
    assert machines[1].endswith("engine-name engine26")
    assert "storage overlayfs" in machines[1]  # engine 26 runs on the containerd image store

    rows = json.loads(out_json.read_text())["rows"]
    assert len(rows) == 2 * len(ROWS)
    assert {row["engine"] for row in rows} == {"system", "engine26"}
    for row in rows:
        assert re.search(r"\d", row["imgbuild"]), row  # every imgbuild side was measured
        assert row["result"] in ("pass", "FAIL", "skip", "info")
        if row["result"] != "skip":
            assert row["ratio"] > 0, row
            assert re.search(r"\d", row["peer"]), row
    # --quick skips only the cold and naive peers (minutes each), never the imgbuild side
    skipped = {row["case"] for row in rows if row["result"] == "skip"}
    allowed = ("P3 ", "P4 ", "P2 … vs naive", "P6 ")
    assert all(case.startswith(allowed) for case in skipped), skipped
