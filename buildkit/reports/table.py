"""The terminal view of a report: sizes per chain level, deploy pull delta, times, checks.

Drawn by `textout` (standard library only), not rich: a one-shot run's start-up (issue 17,
P2-ONESHOT)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from buildkit.reports import units
from buildkit.reports.document import Report
from buildkit.reports.model import CHAIN, CHAIN_LABELS
from buildkit.reports.textout import Grid, Justify, Out

if TYPE_CHECKING:  # verify results load only when a run has one (issue 17, P2-ONESHOT)
    from buildkit.reports.verified import Verify


#: Failed tests the terminal names; the rest are counted ("and 3 more").
SHOWN_FAILED = 5


def sizes_table(report: Report) -> Grid:
    table = Grid(title="Image sizes")
    table.add_column("image")
    table.add_column("metric")
    table.add_column("total", "right")
    for level in CHAIN:
        table.add_column(CHAIN_LABELS[level], "right")
    table.add_column("vs baseline", "right")
    for sizes in report.images:
        before = report.baseline.images.get(sizes.layer) if report.baseline else None
        for metric in ("compressed", "uncompressed"):
            cells = [
                units.size(segment.metric(metric)) if (segment := sizes.chain.get(level)) else ""
                for level in CHAIN
            ]
            change = units.change(sizes.metric(metric), before.metric(metric)) if before else "–"
            table.add_row(
                sizes.layer if metric == "compressed" else "",
                metric,
                units.size(sizes.metric(metric)),
                *cells,
                change,
            )
    return table


def times_table(report: Report) -> Grid:
    table = Grid(title="Build and push times")
    columns: tuple[tuple[str, Justify], ...] = (
        ("image", "left"),
        ("action", "left"),
        ("build", "right"),
        ("steps (cached)", "right"),
        ("cache hit", "right"),
        ("push", "right"),
        ("pushed (compressed)", "right"),
    )
    for name, justify in columns:
        table.add_column(name, justify)
    for layer in ("ruby", "base", "app"):
        t = report.image_times.get(layer)
        if t is None:
            continue
        counted = t.cached + t.executed
        table.add_row(
            layer,
            ("built" if t.built else "up to date") + (", pushed" if t.pushed else ""),
            units.seconds(t.build_seconds) if t.built else "–",
            f"{counted} ({t.cached})" if t.built else "–",
            units.percent(t.cache_ratio) if t.built else "–",
            units.seconds(t.push_seconds) if t.pushed else "–",
            units.size(t.pushed_bytes) if t.pushed else "–",
        )
    return table


def _wall_line(report: Report) -> str | None:
    run = report.run
    if run is None:
        return None
    build = sum(t.build_seconds for t in run.layers)
    push = sum(t.push_seconds for t in run.layers)
    parts = [f"builds {units.seconds(build)}", f"pushes {units.seconds(push)}"]
    parts += [f"{name} {units.seconds(s)}" for name, s in run.phases.items()]
    parts.append(f"unattributed {units.seconds(run.unattributed_seconds)}")
    cache = run.cache()
    ratio = "" if cache["ratio"] is None else f"; cache hits {units.percent(cache['ratio'])}"
    return f"wall time {units.seconds(run.wall_seconds)} = {' + '.join(parts)}{ratio}"


def verify_lines(verify: Verify) -> list[str]:
    """`verify: smoke GET /up -> 200 in 3.9s; tests 12 passed, 0 failed (bin/test) in 8.1s;
    JUnit: <path>`, and a second line naming the failed tests when some failed."""
    parts = []
    if verify.smoke:
        smoke = verify.smoke
        parts.append(
            f"smoke {smoke.check or 'check'} -> {smoke.answer} in {units.seconds(smoke.seconds)}"
        )
    tests = verify.tests
    if tests:
        text = f"tests {tests.passed} passed, {tests.not_passed} failed"
        if tests.skipped:
            text += f", {tests.skipped} skipped"
        text += f" ({tests.command})" if tests.command else ""
        if tests.exit_code is None:
            text += f" did not finish in {units.seconds(tests.seconds)}"
        else:
            if tests.exit_code != 0:
                text += f" exited {tests.exit_code}"
            text += f" in {units.seconds(tests.seconds)}"
        parts.append(text)
    if not parts:
        parts.append(f"no smoke check or tests ran ({units.seconds(verify.seconds)})")
    if verify.junit:
        parts.append(f"JUnit: {', '.join(verify.junit)}")
    lines = [f"verify: {'; '.join(parts)}"]
    if tests and tests.failed:
        names = ", ".join(f.name for f in tests.failed[:SHOWN_FAILED])
        more = tests.not_passed - min(len(tests.failed), SHOWN_FAILED)
        lines.append(f"verify: failed: {names}" + (f" and {more} more" if more > 0 else ""))
    if tests and tests.unreadable:
        lines.append(f"verify: unreadable JUnit: {', '.join(tests.unreadable)}")
    if verify.error and not (tests and tests.failed):
        lines.append(f"verify: FAILED: {verify.error}")
    return lines


def print_report(report: Report, stream: TextIO | None = None) -> None:
    out = Out(stream)
    if report.images:
        out.grid(sizes_table(report))
    for image in report.missing:
        out.line(f"not measured: {image} is neither in the registry nor local")
    for sizes in report.images:
        for note in sizes.notes:
            out.line(f"note: {sizes.layer}: {note}")
    if report.deploy:
        d = report.deploy
        out.line(
            f"deploy pull delta: {units.size(d.compressed)} compressed in {d.layers} layer(s) "
            f"for a node running {d.previous_image} ({d.source})"
        )
    if report.image_times:
        out.grid(times_table(report))
    wall = _wall_line(report)
    if wall:
        out.line(wall)
    for check in report.checks:
        if check.skipped is None and not check.passed:
            out.line(check.sentence(), alert="size budget exceeded: ")
    if report.verify:
        for line in verify_lines(report.verify):
            out.line(line, wrap=False)  # paths stay whole (and clickable) in narrow logs
