"""The size-regression gate: each image against its budgets and the baseline.

A check fails when an image is larger than `max_bytes`, or grew more than `max_growth` over the
baseline. A failure is explained: which chain level grew (OS base, Ruby, gems, source), by how
much, and the largest files added or grown in that level, read from the layer tarballs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from buildkit.config.budgets import Budget
from buildkit.reports import units
from buildkit.reports.baseline import Baseline
from buildkit.reports.layerfiles import FileGrowth, grown_files, tree_of
from buildkit.reports.measure import Measurer
from buildkit.reports.model import CHAIN, CHAIN_LABELS, ImageSizes


@dataclass(frozen=True)
class LevelGrowth:
    level: str
    before: int | None
    after: int | None

    @property
    def growth(self) -> int:
        return (self.after or 0) - (self.before or 0)

    def as_json(self) -> dict[str, Any]:
        return {"level": self.level, "before_bytes": self.before, "after_bytes": self.after}


@dataclass(frozen=True, kw_only=True)
class Check:
    layer: str  # the image: ruby, base or app
    rule: str  # max_bytes or max_growth
    metric: str  # compressed or uncompressed
    limit: float  # bytes for max_bytes, a fraction for max_growth
    current: int | None
    baseline: int | None
    passed: bool
    skipped: str | None = None  # why the check could not run
    grew: tuple[LevelGrowth, ...] = ()  # per chain level; against the baseline when there is one
    files: tuple[FileGrowth, ...] = ()
    against_baseline: bool = False

    @property
    def limit_text(self) -> str:
        if self.rule == "max_bytes":
            return units.size(int(self.limit))
        return units.percent(self.limit)

    @property
    def name(self) -> str:
        if self.rule == "max_bytes":
            return f"{self.layer}: {self.metric} size ≤ {self.limit_text} (max_bytes)"
        return f"{self.layer}: {self.metric} growth ≤ {self.limit_text} over the baseline"

    def sentence(self) -> str:
        """One line: the verdict and, for a failure, what grew."""
        if self.skipped:
            return f"{self.name}: not checked ({self.skipped})"
        now = units.size(self.current)
        if self.rule == "max_bytes":
            verdict = (
                f"{self.layer} is {now} {self.metric}, "
                + ("within" if self.passed else "over")
                + f" max_bytes {self.limit_text}"
            )
        else:
            verdict = (
                f"{self.layer} is {now} {self.metric}, {units.change(self.current, self.baseline)}"
                f" against the baseline {units.size(self.baseline)}"
                + ("" if self.passed else f", more than max_growth {self.limit_text}")
            )
        return verdict + self._explanation()

    def _explanation(self) -> str:
        grown = [g for g in self.grew if g.growth > 0]
        if self.passed or not grown:
            return ""
        top = grown[0]
        label = CHAIN_LABELS.get(top.level, top.level)
        if self.against_baseline:
            text = f"; the {top.level} layer ({label}) grew {units.delta(top.growth)} {self.metric}"
            files = "largest added or grown files"
        else:
            text = f"; the largest chain layer is {top.level} ({label}), {units.size(top.after)}"
            files = "its largest files"
        if self.files:
            text += f"; {files} (uncompressed): {', '.join(_file_text(f) for f in self.files)}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.layer,
            "rule": self.rule,
            "metric": self.metric,
            "limit": self.limit,
            "current_bytes": self.current,
            "baseline_bytes": self.baseline,
            "passed": self.passed,
            "skipped": self.skipped,
            "message": self.sentence(),
            "grew": [g.as_json() for g in self.grew],
            "files": [f.as_json() for f in self.files],
        }


def _file_text(item: FileGrowth) -> str:
    if item.before is None:
        return f"{item.path} {units.size(item.after)} (new)"
    sizes = f"{units.size(item.before)} → {units.size(item.after)}"
    return f"{item.path} {units.delta(item.growth)} ({sizes})"


def evaluate(
    current: Sequence[ImageSizes], baseline: Baseline | None, budgets: Mapping[str, Budget]
) -> list[Check]:
    checks = []
    for sizes in current:
        budget = budgets.get(sizes.layer, Budget())
        value = sizes.metric(budget.metric)
        missing = None if value is not None else f"no {budget.metric} size: the image is not pushed"
        if budget.max_bytes is not None:
            checks.append(
                Check(
                    layer=sizes.layer,
                    rule="max_bytes",
                    metric=budget.metric,
                    limit=budget.max_bytes,
                    current=value,
                    baseline=None,
                    passed=value is not None and value <= budget.max_bytes,
                    skipped=missing,
                )
            )
        if budget.max_growth is not None:
            checks.append(_growth_check(sizes, value, missing, baseline, budget))
    return checks


def _growth_check(
    sizes: ImageSizes,
    value: int | None,
    missing: str | None,
    baseline: Baseline | None,
    budget: Budget,
) -> Check:
    assert budget.max_growth is not None
    before = baseline.images.get(sizes.layer) if baseline else None
    then = before.metric(budget.metric) if before else None
    skipped = missing
    if skipped is None and baseline is None:
        skipped = "no baseline yet: `imgbuild size check --update-baseline` writes one"
    elif skipped is None and then is None:
        skipped = (
            f"the baseline {baseline.source if baseline else ''} has no {budget.metric} size for it"
        )
    passed = skipped is None and value is not None and then is not None
    passed = passed and value <= then * (1 + budget.max_growth)  # type: ignore[operator]
    return Check(
        layer=sizes.layer,
        rule="max_growth",
        metric=budget.metric,
        limit=budget.max_growth,
        current=value,
        baseline=then,
        passed=passed,
        skipped=skipped,
    )


def failed(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if not c.passed and c.skipped is None]


def level_growth(sizes: ImageSizes, before: ImageSizes | None, metric: str) -> list[LevelGrowth]:
    """Each chain level's change, largest growth first (largest level first without a baseline)."""
    result = []
    for level in CHAIN:
        now = sizes.chain.get(level)
        then = before.chain.get(level) if before else None
        if now is None and then is None:
            continue
        result.append(
            LevelGrowth(
                level=level,
                before=then.metric(metric) if then else (None if before else 0),
                after=now.metric(metric) if now else None,
            )
        )
    return sorted(result, key=lambda g: -g.growth)


def explain(
    check: Check, sizes: ImageSizes, before: ImageSizes | None, measurer: Measurer
) -> Check:
    """The check with the grown chain levels and the largest added/grown files of the top one."""
    grew = level_growth(sizes, before, check.metric)
    top = next((g for g in grew if g.growth > 0), None)
    files: list[FileGrowth] = []
    if top is not None:
        files = _level_files(sizes, before, top.level, measurer)
    return replace(check, grew=tuple(grew), files=tuple(files), against_baseline=before is not None)


def _layer_refs(sizes: ImageSizes, level: str) -> list[tuple[str, str]] | None:
    refs = [(x.digest, x.diff_id) for x in sizes.layers if x.chain == level]
    if any(digest is None or diff_id is None for digest, diff_id in refs):
        return None
    return [(str(digest), str(diff_id)) for digest, diff_id in refs]


def _level_files(
    sizes: ImageSizes, before: ImageSizes | None, level: str, measurer: Measurer
) -> list[FileGrowth]:
    """Files added or grown in `level`. Without a readable baseline level, every file of the
    layers the baseline did not have counts as added."""
    now_refs = _layer_refs(sizes, level)
    located = measurer.locate(sizes.image)
    if now_refs is None or located is None:
        return []
    old = _old_tree(before, level, measurer)
    if old is None:
        known = {x.diff_id for x in before.layers} if before else set()
        now_refs = [ref for ref in now_refs if ref[1] not in known]
        old = {}
    after = tree_of(measurer.store, located[0], located[1], now_refs)
    measurer.store.save()
    return grown_files(old, after) if after is not None else []


def _old_tree(before: ImageSizes | None, level: str, measurer: Measurer) -> dict[str, int] | None:
    refs = _layer_refs(before, level) if before else None
    located = measurer.locate(before.image) if before else None
    if not refs or located is None:
        return None
    return tree_of(measurer.store, located[0], located[1], refs)
