"""Reports on the chain's images: sizes, deploy pull delta, times, history and the size gate.

`after_run` is what the CLI calls after every `imgbuild <layer>` run; `imgbuild report` and
`imgbuild size check` (cli/report.py) build the same Report on demand. docs/reports.md documents
the metrics and the JSON schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit.run import summary

if TYPE_CHECKING:
    from buildkit.chain.model import LayerOutcome
    from buildkit.config.loading import Config


def after_run(
    config: Config,
    outcomes: Sequence[LayerOutcome],
    seconds: float,
    *,
    phases: Mapping[str, float] | None = None,
    history_file: Path | None = None,
    verify: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure the run's images, append the run to the history, print the table; return the
    --json document: the run summary plus `report` (schema imgbuild.report/v1).

    `phases`: run-level seconds the pipeline timed (e.g. {"plan": 0.31}); they are attributed in
    the wall-time breakdown instead of landing in `unattributed`.
    `verify`: `VerifyResult.as_json()` of the run's verify (`imgbuild app --verify`); the report
    shows it and keeps it under `report.verify`, the history keeps its summary.
    """
    from buildkit.reports import collect, table

    report = collect.for_run(
        config, outcomes, seconds, phases=phases, history_path=history_file, verify=verify
    )
    table.print_report(report)
    data = summary.run_summary(outcomes, seconds)
    data["report"] = report.as_json()
    return data
