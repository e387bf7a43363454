"""The report: sizes of every image of the chain, deploy pull delta, times and budget checks,
assembled once and rendered as a table, JSON, Markdown, JUnit or HTML (docs/reports.md)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from buildkit.reports import gate, history
from buildkit.reports.baseline import Baseline
from buildkit.reports.measure import Measurer
from buildkit.reports.model import ImageSizes
from buildkit.reports.times import LayerTimes, RunTimes, layer_times_from_json

if TYPE_CHECKING:  # verify results load only when a run has one (issue 17, P2-ONESHOT)
    from buildkit.reports.verified import Verify


SCHEMA = "imgbuild.report/v1"


@dataclass(frozen=True, kw_only=True)
class DeployPull:
    """Compressed bytes a node running `previous_image` must pull to run `image`."""

    image: str
    previous_image: str
    previous_digest: str | None
    compressed: int
    layers: int
    source: str  # where the previous image came from: "history" or the baseline

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "previous_image": self.previous_image,
            "previous_digest": self.previous_digest,
            "compressed_bytes": self.compressed,
            "layers": self.layers,
            "previous_from": self.source,
        }


def deploy_pull(current: ImageSizes, previous: ImageSizes | None, source: str) -> DeployPull | None:
    """Layers are shared by digest: a node pulls only the blobs it does not have."""
    if previous is None or current.compressed is None or not previous.layer_digests:
        return None
    have = previous.layer_digests
    new = {d: size for d, size in current.layer_digests.items() if d not in have}
    return DeployPull(
        image=current.image,
        previous_image=previous.image,
        previous_digest=previous.digest,
        compressed=sum(new.values()),
        layers=len(new),
        source=source,
    )


@dataclass(frozen=True, kw_only=True)
class Report:
    project: str
    commit: str | None
    branch: str | None
    images: tuple[ImageSizes, ...]
    missing: tuple[str, ...] = ()  # chain images found neither in the registry nor locally
    baseline: Baseline | None = None
    deploy: DeployPull | None = None
    run: RunTimes | None = None
    image_times: Mapping[str, LayerTimes] = field(default_factory=dict)
    checks: tuple[gate.Check, ...] = ()
    verify: Verify | None = None  # the app image's verify run (`imgbuild app --verify`)
    generated_at: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    def image(self, layer: str) -> ImageSizes | None:
        return next((i for i in self.images if i.layer == layer), None)

    def as_json(self) -> dict[str, Any]:
        images = []
        for sizes in self.images:
            entry = sizes.as_json()
            before = self.baseline.images.get(sizes.layer) if self.baseline else None
            entry["baseline"] = (
                {
                    "image": before.image,
                    "compressed_bytes": before.compressed,
                    "uncompressed_bytes": before.uncompressed,
                }
                if before
                else None
            )
            times = self.image_times.get(sizes.layer)
            entry["times"] = times.as_json() if times else None
            images.append(entry)
        return {
            "schema": SCHEMA,
            "generated_at": self.generated_at,
            "project": self.project,
            "commit": self.commit,
            "branch": self.branch,
            "images": images,
            "missing": list(self.missing),
            "baseline": self.baseline.source if self.baseline else None,
            "deploy_pull": self.deploy.as_json() if self.deploy else None,
            "run": self.run.as_json() if self.run else None,
            "checks": [check.as_json() for check in self.checks],
            "verify": self.verify.as_json() if self.verify else None,
        }


def previous_app(
    records: Sequence[Mapping[str, Any]], app: ImageSizes | None, baseline: Baseline | None
) -> tuple[ImageSizes | None, str]:
    """The app image a node runs before this one: the last one recorded here, else the baseline."""
    if app is None:
        return None, ""
    found = history.previous(records, "app", app.digest)
    if found is not None:
        return found, "history"
    before = baseline.images.get("app") if baseline else None
    if before is not None and before.digest != app.digest:
        return before, baseline.source if baseline else ""
    return None, ""


def pushed_bytes(
    images: Mapping[str, ImageSizes], records: Sequence[Mapping[str, Any]], pushed: Sequence[str]
) -> dict[str, int | None]:
    """Per pushed image: compressed bytes of the layers the registry did not have before, i.e.
    not in its parent image, the previous image of its repository, or an image pushed earlier in
    this run (docs/reports.md: an upper bound; the registry may hold a blob from elsewhere)."""
    seen: set[str] = set()
    result: dict[str, int | None] = {}
    parent: ImageSizes | None = None
    for layer in ("ruby", "base", "app"):
        sizes = images.get(layer)
        if sizes is None:
            parent = None
            continue
        if layer in pushed:
            if sizes.compressed is None:
                result[layer] = None
            else:
                old = history.previous(records, layer, sizes.digest)
                known = (
                    seen
                    | set(parent.layer_digests if parent else ())
                    | set(old.layer_digests if old else ())
                )
                result[layer] = sum(s for d, s in sizes.layer_digests.items() if d not in known)
        seen |= set(sizes.layer_digests)
        parent = sizes
    return result


def with_checks(
    report: Report,
    measurer: Measurer,
    checks: Sequence[gate.Check],
    *,
    explain: bool,
) -> Report:
    """The report with its checks; failed ones explained (reads layer tarballs) when asked."""
    done = []
    for check in checks:
        sizes = report.image(check.layer)
        if explain and sizes is not None and not check.passed and check.skipped is None:
            before = report.baseline.images.get(check.layer) if report.baseline else None
            done.append(gate.explain(check, sizes, before, measurer))
        else:
            done.append(check)
    return replace(report, checks=tuple(done))


def run_from_record(record: Mapping[str, Any]) -> RunTimes:
    layers = tuple(
        layer_times_from_json(name, entry.get("times") or {})
        for name, entry in history.images_of(record).items()
    )
    run = record.get("run") or {}
    return RunTimes(
        wall_seconds=float(run.get("wall_seconds") or 0.0),
        layers=layers,
        phases={str(k): float(v) for k, v in (run.get("phases") or {}).items()},
    )
