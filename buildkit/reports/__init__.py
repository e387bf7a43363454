"""Reports on a run: sizes, times, history (issue 5 grows this package)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from buildkit import summary

if TYPE_CHECKING:
    from buildkit.config import Config
    from buildkit.pipeline import LayerOutcome


def after_run(config: Config, outcomes: Sequence[LayerOutcome], seconds: float) -> dict[str, Any]:  # noqa: ARG001
    """Called by the CLI after every `imgbuild <layer>` run; returns the --json document."""
    data = summary.run_summary(outcomes, seconds)
    summary.print_run_table(data)
    return data
