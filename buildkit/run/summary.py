"""The end-of-run summary: the part of the --json document that says what each layer did.

Sizes, times and checks are added under `report` by buildkit.reports (docs/reports.md); the
table people read is buildkit/reports/table.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buildkit.chain.model import LayerOutcome

SCHEMA_VERSION = 1


def run_summary(outcomes: Sequence[LayerOutcome], seconds: float) -> dict[str, Any]:
    """The documented --json result of `imgbuild <layer>` (docs/reports.md)."""
    return {
        "schema": SCHEMA_VERSION,
        "seconds": round(seconds, 3),
        "layers": [outcome.as_json() for outcome in outcomes],
    }
