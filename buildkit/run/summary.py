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
    """The documented --json result of `imgbuild <layer>` (docs/reports.md); `processes` only
    when the run's chain ends with the app."""
    data: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "seconds": round(seconds, 3),
        "layers": [outcome.as_json() for outcome in outcomes],
    }
    app = app_outcome(outcomes)
    if app is not None:
        data["processes"] = processes(app)
    return data


def app_outcome(outcomes: Sequence[LayerOutcome]) -> LayerOutcome | None:
    return next((o for o in outcomes if o.plan.spec.name == "app"), None)


def pinned_image(app: LayerOutcome) -> str | None:
    """The app image by its registry digest (`repo@sha256:…`), None when no registry has it."""
    return f"{app.plan.spec.repository}@{app.digest}" if app.digest else None


def processes(app: LayerOutcome) -> list[dict[str, Any]]:
    """Each process type with its command and the one image every process runs."""
    image = pinned_image(app)
    return [
        {"name": name, "command": command, "image": image}
        for name, command in app.plan.spec.processes
    ]


def processes_line(app: LayerOutcome) -> str:
    """The one line people read: `processes web, worker: <repo>@sha256:0123456789ab`."""
    names = ", ".join(name for name, _ in app.plan.spec.processes)
    image = pinned_image(app)
    shown = image[: image.index("@") + 20] if image else f"{app.plan.spec.image} (not pushed)"
    return f"processes {names}: {shown}"
