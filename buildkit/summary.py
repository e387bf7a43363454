"""The end-of-run summary: the --json document and the table people read."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buildkit.pipeline import LayerOutcome

SCHEMA_VERSION = 1


def run_summary(outcomes: Sequence[LayerOutcome], seconds: float) -> dict[str, Any]:
    """The documented --json result of `imgbuild <layer>` (docs/json.md)."""
    return {
        "schema": SCHEMA_VERSION,
        "seconds": round(seconds, 3),
        "layers": [outcome.as_json() for outcome in outcomes],
    }


def _action(layer: dict[str, Any]) -> str:
    if layer["built"]:
        return "built"
    return "up to date"


def print_run_table(data: dict[str, Any]) -> None:
    rows = [("layer", "action", "build s", "pushed", "steps (cached)", "image")]
    for layer in data["layers"]:
        steps = list(layer["steps"])
        cached = sum(1 for s in steps if s["cached"])
        rows.append(
            (
                layer["name"],
                _action(layer),
                f"{layer['seconds']:.1f}",
                "yes" if layer["pushed"] else "-",
                f"{len(steps)} ({cached})" if steps else "-",
                layer["image"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)),
            file=sys.stderr,
        )
    print(f"total {data['seconds']:.1f}s", file=sys.stderr)
