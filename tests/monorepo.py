"""The test monorepo (tests/data/monorepo): three copies of examples/hello under one config."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hello"
CONFIG = Path(__file__).resolve().parent / "data" / "monorepo" / "imgbuild.yaml"
APPS = ("web", "api", "worker")


def lay_out(root: Path) -> Path:
    """Write the monorepo under root; return its config. Each app's app.rb says its name, so
    the three app images differ while their Gemfiles (and so their bases' keys) are the same."""
    root.mkdir(parents=True, exist_ok=True)
    for app in APPS:
        shutil.copytree(EXAMPLE, root / app, ignore=shutil.ignore_patterns("gems-src"))
        source = root / app / "app.rb"
        source.write_text(f"# the {app} app of the test monorepo\n" + source.read_text())
    shutil.copy(CONFIG, root / "imgbuild.yaml")
    return root / "imgbuild.yaml"
