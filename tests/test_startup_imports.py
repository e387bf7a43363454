"""What a one-shot `imgbuild app --push` imports before it does anything (issue 17, P2-ONESHOT).

Without a resident server every run pays its imports, which were most of a native app push's
wall time. These modules are loaded only where they are needed (inside functions); an eager
import added back at module level fails here, in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Every module the native one-shot path imports at module level, or in the functions it runs
#: whatever the registry: the console entry, the CLI, the pipeline, the native assembly, the
#: report and its table.
ONE_SHOT_PATH = (
    "buildkit.server.launcher",
    "buildkit.cli.app",
    "buildkit.run.pipeline",
    "buildkit.run.native",
    "buildkit.engine.progress",
    "buildkit.reports",
    "buildkit.reports.collect",
    "buildkit.reports.table",
)

#: Not needed by a native push to a registry that is not ECR, and not small.
NOT_IMPORTED = (
    "rich",  # the report's tables are reports.textout's
    "buildkit.engine.ecr",  # ECR only (run.access)
    "buildkit.engine.ecr_repos",
    "boto3",
    "docker",  # the Docker SDK: a native app needs no daemon
    "tenacity",  # a failed registry request only
    "asyncio",
    "buildkit.reports.verified",  # `--verify` runs only
    "buildkit.server.daemon",
    "buildkit.engine.builder",
    "buildkit.run.verify",
    "buildkit.codebuild",
    "buildkit.reports.html",
    "buildkit.reports.markdown",
)


def _imported_after(modules: tuple[str, ...]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_the_one_shot_path_leaves_heavy_modules_unimported() -> None:
    loaded = _imported_after(ONE_SHOT_PATH)
    assert set(ONE_SHOT_PATH) <= loaded  # the probe itself worked
    eager = sorted(
        name for name in NOT_IMPORTED if any(m == name or m.startswith(name + ".") for m in loaded)
    )
    assert eager == [], f"imported on the one-shot path: {eager}"


def test_the_probe_sees_a_lazy_module_once_used() -> None:
    """The check can fail: loading what the report imports for a verify run shows up."""
    loaded = _imported_after((*ONE_SHOT_PATH, "buildkit.reports.verified"))
    assert "buildkit.reports.verified" in loaded
