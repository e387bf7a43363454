"""Gather a report: after a run (from its outcomes) or on demand (from the config's keys)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit import log
from buildkit.chain import layers, plan
from buildkit.config.budgets import Budget
from buildkit.config.loading import Config
from buildkit.engine import reference
from buildkit.engine.registry import split_ref
from buildkit.errors import ImgbuildError
from buildkit.reports import baseline as baselines
from buildkit.reports import gate, history, times
from buildkit.reports.document import (
    SCHEMA,
    Report,
    deploy_pull,
    previous_app,
    pushed_bytes,
    run_from_record,
    with_checks,
)
from buildkit.reports.measure import Measurer, Target
from buildkit.reports.times import RunTimes
from buildkit.run.access import open_registry
from buildkit.source import gitinfo

if TYPE_CHECKING:
    from buildkit.chain.model import LayerOutcome
    from buildkit.reports.verified import Verify


def load_baseline(
    config: Config,
    measurer: Measurer,
    chain: Sequence[Target],
    *,
    path: Path | None = None,
    tag: str | None = None,
) -> baselines.Baseline | None:
    """`--baseline-tag`, else the baseline file (`--baseline`, budgets.baseline or
    imgbuild-baseline.json next to the config), else the images last pushed for the first
    release branch (its moving tag, e.g. `main`), else None."""
    if tag:
        import re

        from buildkit.errors import ConfigError

        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", tag):
            raise ConfigError(f"--baseline-tag '{tag}' is not an image tag ([A-Za-z0-9_.-], ≤ 128)")
        return _tagged(config, measurer, chain, tag, required=True)
    explicit = path or config.budgets.baseline
    found = baselines.load(path or baselines.default_path(config))
    if found is not None or explicit is not None or not config.tags.release_branches:
        return found
    return _tagged(config, measurer, chain, config.tags.release_branches[0], required=False)


def _tagged(
    config: Config, measurer: Measurer, chain: Sequence[Target], tag: str, *, required: bool
) -> baselines.Baseline | None:
    """The chain's images under `tag` (the repositories of `chain`, another tag)."""
    # With a registry, a baseline tag is the registry's: asking the daemon too would start the
    # Docker SDK on every run of a project that has not pushed that tag yet.
    daemon = not config.registry
    found = measurer.measure(
        [
            Target(layer=t.layer, image=f"{reference.parse(t.image).name}:{tag}", daemon=daemon)
            for t in chain
        ]
    )
    if not any(found):
        if required:
            raise ImgbuildError(
                f"no image of the chain has the tag {tag} in {config.registry}; push one with "
                "that tag or pass --baseline FILE"
            )
        return None
    return baselines.from_images(f"registry tag {tag}", found)


def _assemble(
    config: Config,
    measurer: Measurer,
    targets: Sequence[Target],
    records: Sequence[Mapping[str, Any]],
    baseline: baselines.Baseline | None,
) -> Report:
    if baseline is not None:
        measurer.store.seed(
            (x.diff_id, x.uncompressed)
            for i in baseline.images.values()
            if i.source == "registry"
            for x in i.layers
        )
    found = measurer.measure(targets)
    images = tuple(sizes for sizes in found if sizes is not None)
    missing = tuple(t.image for t, sizes in zip(targets, found, strict=True) if sizes is None)
    app = next((i for i in images if i.layer == "app"), None)
    previous, source = previous_app(records, app, baseline)
    git = gitinfo.detect(config.app.context)
    return Report(
        project=config.name,
        commit=git.commit,
        branch=git.branch,
        images=images,
        missing=missing,
        baseline=baseline,
        deploy=deploy_pull(app, previous, source) if app else None,
    )


def for_run(
    config: Config,
    outcomes: Sequence[LayerOutcome],
    seconds: float,
    *,
    phases: Mapping[str, float] | None = None,
    history_path: Path | None = None,
    verify: Mapping[str, Any] | None = None,
) -> Report:
    """Measure what a run built or used, time it, and append it to the history.

    `verify`: the run's `VerifyResult.as_json()`, shown in the report and kept in the history."""
    path = history_path or history.default_path(config)
    records = history.Recent(path)  # parsed newest first, as far back as needed
    config, access = open_registry(config)
    # A run that pushed may store what it measured beside the images (reports.sizesref), so
    # the next fresh machine reads sizes instead of layers.
    # What the run pushed itself (a native app's manifest and config) is not read back.
    known = {
        (split_ref(o.plan.spec.image)[1], digest): content
        for o in outcomes
        for digest, content in o.written.items()
    }
    measurer = Measurer(config, access=access, publish=any(o.pushed for o in outcomes), known=known)
    measurer.store.seed(history.measured_layers(records))
    measurer.store.seed(size for o in outcomes for size in o.layer_sizes.items())
    targets = [
        Target(
            layer=o.plan.spec.name,
            image=o.plan.spec.image,
            key=o.plan.spec.key,
            local=o.built and not o.pushed,  # a fresh local build may shadow an older registry copy
            digest=o.digest if o.digest and o.digest.startswith("sha256:") else None,
        )
        for o in outcomes
    ]
    try:
        baseline = load_baseline(config, measurer, targets)
    except ImgbuildError as exc:
        log.warn(f"baseline ignored: {exc.message}")
        baseline = None
    try:
        report = _assemble(config, measurer, targets, records, baseline)
    except ImgbuildError as exc:  # a report must not turn a good build into a failure
        log.warn(f"image sizes not measured: {exc.message}")
        report = Report(project=config.name, commit=None, branch=None, images=())
    by_layer = {i.layer: i for i in report.images}
    pushed = pushed_bytes(by_layer, records, [o.plan.spec.name for o in outcomes if o.pushed])
    run = times.from_outcomes(outcomes, seconds, pushed, phases)
    report = Report(
        **{
            **report.__dict__,
            "run": run,
            "image_times": {t.layer: t for t in run.layers},
            "verify": _verified(verify),
        }
    )
    report = with_checks(
        report, measurer, gate.evaluate(report.images, baseline, _budgets(config)), explain=False
    )
    history.append(path, record(report))
    return report


def on_demand(
    config: Config,
    *,
    baseline_path: Path | None = None,
    baseline_tag: str | None = None,
    history_path: Path | None = None,
    budgets: Mapping[str, Budget] | None = None,
    explain: bool = True,
) -> Report:
    """The report for the images the config's current inputs name (`imgbuild report`)."""
    records = history.read(history_path or history.default_path(config))
    config, access = open_registry(config)
    measurer = Measurer(config, access=access)
    measurer.store.seed(history.measured_layers(records))
    specs = layers.chain(config, plan.digest_cache(config))
    targets = [Target(layer=s.name, image=s.image, key=s.key) for s in specs]
    baseline = load_baseline(config, measurer, targets, path=baseline_path, tag=baseline_tag)
    report = _assemble(config, measurer, targets, records, baseline)
    image_times = {}
    for spec in specs:
        found = history.latest_times(records, spec.name, spec.key)
        if found is not None:
            image_times[spec.name] = times.layer_times_from_json(spec.name, found)
    run = _run_that_built(records, specs[-1].name, specs[-1].key)
    verify = _verified(history.latest_verify(records, specs[-1].name, specs[-1].key))
    report = replace(report, run=run, image_times=image_times, verify=verify)
    checks = gate.evaluate(report.images, baseline, budgets or _budgets(config))
    return with_checks(report, measurer, checks, explain=explain)


def _run_that_built(records: Sequence[Mapping[str, Any]], layer: str, key: str) -> RunTimes | None:
    """The newest recorded run that built `layer` at `key` (else the newest that used it)."""
    used = None
    for r in reversed(records):
        entry = history.images_of(r).get(layer) or {}
        if entry.get("key") != key:
            continue
        if (entry.get("times") or {}).get("built"):
            return run_from_record(r)
        used = used or run_from_record(r)
    return used


def _verified(data: Any) -> Verify | None:
    """verified.parse, imported only when there is a verify result: most runs have none, and a
    one-shot run's start-up counts (issue 17, P2-ONESHOT)."""
    if data is None:
        return None
    from buildkit.reports import verified

    return verified.parse(data)


def _budgets(config: Config) -> dict[str, Budget]:
    return {name: config.budgets.for_image(name) for name in ("ruby", "base", "app")}


def record(report: Report) -> dict[str, Any]:
    """One history line for a run."""
    images = []
    for sizes in report.images:
        entry = history.compact_image(sizes)
        layer_times = report.image_times.get(sizes.layer)
        entry["times"] = layer_times.as_json() if layer_times else None
        images.append(entry)
    run = report.run.as_json() if report.run else {}
    run.pop("breakdown", None)
    return {
        "schema": history.SCHEMA,
        "report_schema": SCHEMA,
        "at": report.generated_at,
        "project": report.project,
        "commit": report.commit,
        "branch": report.branch,
        "run": run,
        "images": images,
        "deploy_pull": report.deploy.as_json() if report.deploy else None,
        "verify": report.verify.compact() if report.verify else None,
    }
