"""Where a run's wall time went: per layer (BuildKit steps, client overhead, push) and per run.

The breakdown adds up to the wall time by construction: each layer's build time is its steps plus
an `overhead` row (docker CLI start, BuildKit session, solve scheduling; negative when stages ran
in parallel), and whatever the pipeline did not time (planning, hashing, registry checks, moving
`latest`) is an explicit `unattributed` row, so nothing is hidden. BuildKit's plain progress
prints step times to 0.1 s, so steps faster than that count as 0.0 s and land in `overhead`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from buildkit.engine.progress import Step, summarize

if TYPE_CHECKING:
    from buildkit.chain.model import LayerOutcome


@dataclass(frozen=True, kw_only=True)
class LayerTimes:
    layer: str
    built: bool
    pushed: bool
    build_seconds: float
    push_seconds: float
    steps: tuple[Step, ...]
    pushed_bytes: int | None = None  # compressed bytes this push uploaded (docs/reports.md)

    @property
    def steps_seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    @property
    def overhead_seconds(self) -> float:
        return self.build_seconds - self.steps_seconds if self.built else 0.0

    @property
    def cached(self) -> int:
        return summarize(self.steps)["cached"]

    @property
    def executed(self) -> int:
        return summarize(self.steps)["executed"]

    @property
    def cache_ratio(self) -> float | None:
        return summarize(self.steps)["cache_ratio"]

    def as_json(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "pushed": self.pushed,
            "build_seconds": round(self.build_seconds, 3),
            "steps_seconds": round(self.steps_seconds, 3),
            "overhead_seconds": round(self.overhead_seconds, 3),
            "push_seconds": round(self.push_seconds, 3),
            "pushed_bytes": self.pushed_bytes,
            "cache": {
                "cached": self.cached,
                "executed": self.executed,
                "ratio": _round(self.cache_ratio),
            },
            "steps": [
                {
                    "name": step.name,
                    "seconds": round(step.seconds, 3),
                    "cached": step.cached,
                    "internal": step.internal,
                }
                for step in self.steps
            ],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True, kw_only=True)
class RunTimes:
    wall_seconds: float
    layers: tuple[LayerTimes, ...]
    phases: Mapping[str, float] = field(default_factory=dict)  # run-level, timed by the pipeline

    @property
    def attributed_seconds(self) -> float:
        own = sum(t.build_seconds + t.push_seconds for t in self.layers)
        return own + sum(self.phases.values())

    @property
    def unattributed_seconds(self) -> float:
        return self.wall_seconds - self.attributed_seconds

    @property
    def pushed_bytes(self) -> int | None:
        values = [t.pushed_bytes for t in self.layers if t.pushed]
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    def cache(self) -> dict[str, Any]:
        steps = [step for t in self.layers for step in t.steps]
        totals = summarize(steps)
        return {
            "cached": totals["cached"],
            "executed": totals["executed"],
            "ratio": _round(totals["cache_ratio"]),
        }

    def breakdown(self) -> list[tuple[str, float]]:
        """(what, seconds) rows whose sum is the wall time."""
        rows = [(f"{name}", seconds) for name, seconds in self.phases.items()]
        for t in self.layers:
            if t.built:
                rows += [(f"build {t.layer}: {s.name}", s.seconds) for s in t.steps]
                rows.append(
                    (f"build {t.layer}: BuildKit client and scheduling", t.overhead_seconds)
                )
            if t.pushed:
                rows.append((f"push {t.layer}", t.push_seconds))
        rows.append(
            ("unattributed (planning, registry checks, tagging latest)", self.unattributed_seconds)
        )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "wall_seconds": round(self.wall_seconds, 3),
            "phases": {name: round(seconds, 3) for name, seconds in self.phases.items()},
            "build_seconds": round(sum(t.build_seconds for t in self.layers), 3),
            "push_seconds": round(sum(t.push_seconds for t in self.layers), 3),
            "pushed_bytes": self.pushed_bytes,
            "unattributed_seconds": round(self.unattributed_seconds, 3),
            "cache": self.cache(),
            "breakdown": [
                {"what": what, "seconds": round(seconds, 3)} for what, seconds in self.breakdown()
            ],
        }


def from_outcomes(
    outcomes: Sequence[LayerOutcome],
    wall_seconds: float,
    pushed_bytes: Mapping[str, int | None],
    phases: Mapping[str, float] | None = None,
) -> RunTimes:
    return RunTimes(
        wall_seconds=wall_seconds,
        phases=dict(phases or {}),
        layers=tuple(
            LayerTimes(
                layer=o.plan.spec.name,
                built=o.built,
                pushed=o.pushed,
                build_seconds=o.build_seconds,
                push_seconds=o.push_seconds,
                steps=tuple(o.steps),
                pushed_bytes=pushed_bytes.get(o.plan.spec.name) if o.pushed else None,
            )
            for o in outcomes
        ),
    )


def layer_times_from_json(layer: str, data: Mapping[str, Any]) -> LayerTimes:
    """A LayerTimes back from a history record (for `imgbuild report` and trends)."""
    return LayerTimes(
        layer=layer,
        built=bool(data.get("built")),
        pushed=bool(data.get("pushed")),
        build_seconds=float(data.get("build_seconds") or 0.0),
        push_seconds=float(data.get("push_seconds") or 0.0),
        pushed_bytes=data.get("pushed_bytes"),
        steps=tuple(
            Step(
                name=str(s.get("name", "")),
                seconds=float(s.get("seconds") or 0.0),
                cached=bool(s.get("cached")),
                internal=bool(s.get("internal")),
            )
            for s in data.get("steps") or ()
        ),
    )
