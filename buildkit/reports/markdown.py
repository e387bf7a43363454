"""`imgbuild report --markdown`: a pull-request comment with the change against the baseline."""

from __future__ import annotations

from buildkit.reports import units
from buildkit.reports.document import Report
from buildkit.reports.model import CHAIN, CHAIN_LABELS


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _sizes(report: Report) -> list[str]:
    out = [
        _row(["image", "compressed (download)", "change", "uncompressed (on disk)", "change"]),
        "|---|--:|--:|--:|--:|",
    ]
    for sizes in report.images:
        before = report.baseline.images.get(sizes.layer) if report.baseline else None
        cells = [f"`{sizes.layer}`"]
        for metric in ("compressed", "uncompressed"):
            now = sizes.metric(metric)
            then = before.metric(metric) if before else None
            change = units.change(now, then)
            grew = now is not None and then is not None and now > then
            cells += [units.size(now), f"**{change}**" if grew else change]
        out.append(_row(cells))
    return out


def _chain(report: Report) -> list[str]:
    out = [
        _row(["image", *(CHAIN_LABELS[level] for level in CHAIN)]),
        "|---|" + "--:|" * len(CHAIN),
    ]
    for sizes in report.images:
        cells = [f"`{sizes.layer}`"]
        for level in CHAIN:
            seg = sizes.chain.get(level)
            cells.append(
                f"{units.size(seg.compressed)} / {units.size(seg.uncompressed)}" if seg else ""
            )
        out.append(_row(cells))
    return out


def _times(report: Report) -> list[str]:
    out = [
        _row(["image", "action", "build", "cache hits", "push", "pushed (compressed)"]),
        "|---|---|--:|--:|--:|--:|",
    ]
    for layer in ("ruby", "base", "app"):
        t = report.image_times.get(layer)
        if t is None:
            continue
        action = ("built" if t.built else "up to date") + (", pushed" if t.pushed else "")
        out.append(
            _row(
                [
                    f"`{layer}`",
                    action,
                    units.seconds(t.build_seconds) if t.built else "–",
                    units.percent(t.cache_ratio) if t.built else "–",
                    units.seconds(t.push_seconds) if t.pushed else "–",
                    units.size(t.pushed_bytes) if t.pushed else "–",
                ]
            )
        )
    if report.run:
        run = report.run
        out.append("")
        out.append(
            f"Wall time {units.seconds(run.wall_seconds)}: builds "
            f"{units.seconds(sum(t.build_seconds for t in run.layers))}, pushes "
            f"{units.seconds(sum(t.push_seconds for t in run.layers))}, unattributed "
            f"{units.seconds(run.unattributed_seconds)}."
        )
    return out


def _checks(report: Report) -> list[str]:
    out = []
    for check in report.checks:
        mark = "⚪" if check.skipped else ("✅" if check.passed else "❌")
        out.append(f"- {mark} {check.sentence()}")
    return out


def render(report: Report) -> str:
    failed = [c for c in report.checks if not c.passed and c.skipped is None]
    verdict = f"❌ {len(failed)} size budget(s) exceeded" if failed else "✅ within size budgets"
    head = f"### imgbuild: `{report.project}` images — {verdict}"
    facts = []
    if report.commit:
        facts.append(f"commit `{report.commit[:12]}`")
    facts.append(f"baseline `{report.baseline.source}`" if report.baseline else "no baseline")
    lines = [head, "", " · ".join(facts), "", *_sizes(report), ""]
    if report.deploy:
        d = report.deploy
        lines += [
            f"**Deploy pull delta:** {units.size(d.compressed)} compressed in {d.layers} "
            f"layer(s) for a node running `{d.previous_image}`.",
            "",
        ]
    if report.checks:
        lines += ["#### Size budgets", "", *_checks(report), ""]
    lines += [
        "<details><summary>Size per chain layer (compressed / uncompressed)</summary>",
        "",
        *_chain(report),
        "",
        "</details>",
        "",
    ]
    if report.image_times:
        lines += ["#### Build times", "", *_times(report), ""]
    return "\n".join(lines)
