"""`imgbuild report --html FILE`: one self-contained page (inline CSS and SVG, no scripts) with the
sizes per chain level, where the build time went, and the trend over the recorded history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from buildkit.reports import units
from buildkit.reports.document import Report
from buildkit.reports.history import image_from_record, images_of
from buildkit.reports.model import CHAIN, CHAIN_LABELS
from buildkit.reports.svg import Bar, Part, Series, hbars, legend, lines
from buildkit.reports.times import RunTimes
from buildkit.reports.verified import Verify

COLORS = {"os": "#64748b", "ruby": "#dc2626", "base": "#d97706", "app": "#2563eb"}
PUSH, OVERHEAD, CACHED, OTHER = "#7c3aed", "#94a3b8", "#cbd5e1", "#e2e8f0"
MAX_STEP_BARS = 24
LISTED_FAILED = 100  # failed tests listed with their messages; the rest are counted

CSS = """
body{margin:0;background:#f8fafc;color:#111827;font:15px/1.5 system-ui,-apple-system,'Segoe UI',
Roboto,sans-serif}
main{max-width:1080px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:4px 0 6px}
.sub{color:#6b7280;margin:0 0 18px}.sub code{color:#374151}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:12px 14px}
.card b{display:block;font-size:22px}.card span{color:#6b7280;font-size:13px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:16px 20px;
margin-top:16px}
.explain{color:#6b7280;font-size:13px;margin:2px 0 10px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 8px;border-bottom:1px solid #f1f5f9;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.l,th.l{text-align:left}
th{color:#6b7280;font-weight:600;font-size:13px}
td.wrap{white-space:normal;text-align:left;font-size:12px;color:#374151}
.legend{display:flex;flex-wrap:wrap;gap:16px;margin:6px 0 4px;font-size:13px}
.key i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;
vertical-align:-1px}
.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.skip{color:#6b7280}.up{color:#b91c1c}.down{color:#15803d}
"""


def render(report: Report, records: Sequence[Mapping[str, Any]]) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>imgbuild report: {escape(report.project)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        _header(report),
        _cards(report),
        _sizes(report),
        _times(report),
        _trend(records),
        _checks(report),
        _verify(report.verify) if report.verify else "",
        _layers(report),
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _header(report: Report) -> str:
    facts = [f"generated {report.generated_at}"]
    if report.commit:
        facts.append(f"commit <code>{escape(report.commit[:12])}</code>")
    if report.branch:
        facts.append(f"branch <code>{escape(report.branch)}</code>")
    facts.append(
        f"baseline <code>{escape(report.baseline.source)}</code>"
        if report.baseline
        else "no baseline"
    )
    return (
        f"<h1>{escape(report.project)}: image sizes and build times</h1>"
        f"<p class='sub'>{' · '.join(facts)}</p>"
    )


def _card(value: str, label: str) -> str:
    return f"<div class='card'><b>{escape(value)}</b><span>{escape(label)}</span></div>"


def _cards(report: Report) -> str:
    app = report.image("app") or (report.images[-1] if report.images else None)
    cards = []
    if app:
        cards.append(_card(units.size(app.compressed), f"{app.layer} compressed (download)"))
        cards.append(_card(units.size(app.uncompressed), f"{app.layer} uncompressed (on disk)"))
    if report.deploy:
        cards.append(_card(units.size(report.deploy.compressed), "deploy pull delta (compressed)"))
    if report.run:
        cards.append(_card(units.seconds(report.run.wall_seconds), "wall time of the build"))
        ratio = report.run.cache()["ratio"]
        cards.append(_card(units.percent(ratio), "BuildKit cache hits (steps)"))
        if report.run.pushed_bytes is not None and any(t.pushed for t in report.run.layers):
            cards.append(_card(units.size(report.run.pushed_bytes), "pushed (compressed)"))
    return f"<div class='cards'>{''.join(cards)}</div>" if cards else ""


def _size_bars(report: Report) -> list[Bar]:
    bars = []
    for sizes in report.images:
        for metric in ("compressed", "uncompressed"):
            parts = tuple(
                Part(CHAIN_LABELS[level], float(seg.metric(metric) or 0), COLORS[level])
                for level in CHAIN
                if (seg := sizes.chain.get(level)) is not None
            )
            bars.append(Bar(f"{sizes.layer} · {metric}", parts, units.size(sizes.metric(metric))))
    return bars


def _sizes(report: Report) -> str:
    if not report.images:
        return "<section><h2>Image sizes</h2><p>No image of the chain was found.</p></section>"
    chart = hbars(_size_bars(report), lambda v: units.size(int(v)))
    rows = []
    for sizes in report.images:
        before = report.baseline.images.get(sizes.layer) if report.baseline else None
        for metric in ("compressed", "uncompressed"):
            then = before.metric(metric) if before else None
            rows.append(
                f"<tr><td>{escape(sizes.layer) if metric == 'compressed' else ''}</td>"
                f"<td class='l'>{metric}</td><td>{units.size(sizes.metric(metric))}</td>"
                + "".join(
                    f"<td>{units.size(seg.metric(metric)) if (seg := sizes.chain.get(lv)) else ''}"
                    "</td>"
                    for lv in CHAIN
                )
                + f"<td class='{_trend_class(sizes.metric(metric), then)}'>"
                f"{units.change(sizes.metric(metric), then)}</td></tr>"
            )
    head = "".join(f"<th>{escape(CHAIN_LABELS[lv])}</th>" for lv in CHAIN)
    return (
        "<section><h2>Size per chain layer</h2><p class='explain'>compressed = the registry "
        "manifest's layer sizes, what a node downloads; uncompressed = what it unpacks.</p>"
        + legend([(CHAIN_LABELS[lv], COLORS[lv]) for lv in CHAIN])
        + chart
        + "<table><tr><th>image</th><th class='l'>metric</th><th>total</th>"
        + head
        + "<th>vs baseline</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _trend_class(now: int | None, then: int | None) -> str:
    if now is None or then is None or now == then:
        return ""
    return "up" if now > then else "down"


def _step_bars(run: RunTimes) -> list[Bar]:
    bars: list[Bar] = []
    for name, seconds in run.phases.items():
        bars.append(Bar(name, (Part(name, seconds, OVERHEAD),), units.seconds(seconds)))
    for t in run.layers:
        if t.built:
            steps = sorted(t.steps, key=lambda s: -s.seconds)
            shown, rest = steps[: MAX_STEP_BARS // 2], steps[MAX_STEP_BARS // 2 :]
            for s in sorted(shown, key=t.steps.index):
                color = CACHED if s.cached else COLORS[t.layer]
                note = "cached" if s.cached else units.seconds(s.seconds)
                bars.append(Bar(f"{t.layer}: {s.name}", (Part(s.name, s.seconds, color),), note))
            if rest:
                total = sum(s.seconds for s in rest)
                label = f"{t.layer}: {len(rest)} more steps"
                bars.append(Bar(label, (Part(label, total, OTHER),), units.seconds(total)))
            over = max(t.overhead_seconds, 0.0)
            label = f"{t.layer}: BuildKit client, scheduling"
            bars.append(Bar(label, (Part(label, over, OVERHEAD),), units.seconds(over)))
        if t.pushed:
            bars.append(
                Bar(
                    f"{t.layer}: push",
                    (Part("push", t.push_seconds, PUSH),),
                    units.seconds(t.push_seconds),
                )
            )
    left = max(run.unattributed_seconds, 0.0)
    bars.append(Bar("unattributed", (Part("unattributed", left, OTHER),), units.seconds(left)))
    return bars


def _times(report: Report) -> str:
    run = report.run
    if run is None:
        return (
            "<section><h2>Build time per step</h2><p>No recorded build made these images."
            "</p></section>"
        )
    built = [t for t in run.layers if t.built]
    if not built and not any(t.pushed for t in run.layers):
        return (
            "<section><h2>Build time per step</h2><p>Nothing was built or pushed: every image "
            f"was up to date ({units.seconds(run.wall_seconds)} wall time).</p></section>"
        )
    chart = hbars(_step_bars(run), lambda v: f"{v:.1f}s", label_width=360)
    keys = [(f"{t.layer} step", COLORS[t.layer]) for t in built]
    keys += [("cached step", CACHED), ("push", PUSH), ("client and scheduling", OVERHEAD)]
    return (
        "<section><h2>Build time per step</h2><p class='explain'>The bars add up to the wall time "
        f"of the build, {units.seconds(run.wall_seconds)}. BuildKit prints step times to 0.1 s."
        "</p>" + legend(keys) + chart + "</section>"
    )


def _trend(records: Sequence[Mapping[str, Any]]) -> str:
    points = [(r, images_of(r).get("app")) for r in records]
    points = [(r, app) for r, app in points if app]
    if len(points) < 2:
        return (
            "<section><h2>Trend</h2><p>The trend appears after two recorded builds "
            f"({len(points)} so far).</p></section>"
        )
    labels = [f"#{n} {str(r.get('at', ''))[11:16]}" for n, (r, _) in enumerate(points, 1)]
    apps = [image_from_record(app) for _, app in points if app]
    size_chart = lines(
        [
            Series("app compressed", COLORS["app"], tuple(_f(a.compressed) for a in apps)),
            Series("app uncompressed", COLORS["os"], tuple(_f(a.uncompressed) for a in apps)),
        ],
        labels,
        lambda v: units.size(int(v)),
    )
    walls = tuple(_f((r.get("run") or {}).get("wall_seconds")) for r, _ in points)
    builds = tuple(_f((r.get("run") or {}).get("build_seconds")) for r, _ in points)
    time_chart = lines(
        [Series("wall time", COLORS["ruby"], walls), Series("build time", COLORS["base"], builds)],
        labels,
        lambda v: f"{v:.0f}s" if v >= 10 else f"{v:.1f}s",
    )
    return (
        f"<section><h2>Trend over {len(points)} recorded builds</h2><p class='explain'>App image "
        "size per build</p>"
        + size_chart
        + "<p class='explain'>Time per build</p>"
        + time_chart
        + "</section>"
    )


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _checks(report: Report) -> str:
    if not report.checks:
        return ""
    rows = []
    for check in report.checks:
        if check.skipped:
            verdict = "<span class='skip'>not checked</span>"
        elif check.passed:
            verdict = "<span class='pass'>pass</span>"
        else:
            verdict = "<span class='fail'>FAIL</span>"
        rows.append(f"<tr><td>{verdict}</td><td class='wrap'>{escape(check.sentence())}</td></tr>")
    return (
        "<section><h2>Size budgets</h2><table><tr><th>verdict</th><th class='l'>check</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _verify(verify: Verify) -> str:
    tests = verify.tests
    verdict = (
        "<span class='pass'>passed</span>" if verify.passed else "<span class='fail'>FAIL</span>"
    )
    rows = [
        f"<tr><td>service <code>{escape(name)}</code></td><td class='l'>ready</td>"
        f"<td>{units.seconds(seconds)}</td></tr>"
        for name, seconds in verify.services.items()
    ]
    if verify.error:
        rows.append(
            f"<tr><td>verdict</td><td class='l' colspan='2'>{escape(verify.error)}</td></tr>"
        )
    if verify.smoke:
        smoke = verify.smoke
        image = f" of <code>{escape(smoke.image)}</code>" if smoke.image else ""
        rows.append(
            f"<tr><td>smoke check <code>{escape(smoke.check or 'check')}</code>{image}</td>"
            f"<td class='l'><span class='pass'>{escape(smoke.answer)}</span></td>"
            f"<td>{units.seconds(smoke.seconds)}</td></tr>"
        )
    if tests:
        counts = (
            f"{tests.passed} passed, {tests.failures} failed, {tests.errors} errors, "
            f"{tests.skipped} skipped of {tests.tests}; "
            + ("did not finish" if tests.exit_code is None else f"exit {tests.exit_code}")
        )
        style = "pass" if tests.ok else "fail"
        rows.append(
            f"<tr><td>tests <code>{escape(tests.command or 'command')}</code></td>"
            f"<td class='l'><span class='{style}'>{escape(counts)}</span></td>"
            f"<td>{units.seconds(tests.seconds)}</td></tr>"
        )
    parts = [
        f"<section><h2>Verify: {verdict}</h2><p class='explain'>The services the app needs, a "
        "smoke check of the app image, the app's tests in its test variant image; "
        f"{units.seconds(verify.seconds)} in all.</p>"
    ]
    if rows:
        parts.append(
            "<table><tr><th>check</th><th class='l'>result</th><th>time</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    else:
        parts.append("<p>No smoke check or tests ran.</p>")
    if tests and tests.failed:
        listed = tests.failed[:LISTED_FAILED]
        more = tests.not_passed - len(listed)
        parts.append(
            "<h3>Failed tests</h3><table><tr><th>test</th><th class='l'>message</th></tr>"
            + "".join(
                f"<tr><td class='wrap'><code>{escape(f.name)}</code></td>"
                f"<td class='wrap'>{escape(f.message)}</td></tr>"
                for f in listed
            )
            + "</table>"
            + (f"<p>and {more} more</p>" if more > 0 else "")
        )
    files = [("JUnit", p) for p in verify.junit]
    files += [("unreadable JUnit", p) for p in (tests.unreadable if tests else ())]
    if files:
        parts.append(
            "<ul>"
            + "".join(f"<li>{label}: <code>{escape(path)}</code></li>" for label, path in files)
            + "</ul>"
        )
    parts.append("</section>")
    return "".join(parts)


def _layers(report: Report) -> str:
    sizes = report.image("app") or (report.images[-1] if report.images else None)
    if sizes is None or not sizes.layers:
        return ""
    rows = "".join(
        f"<tr><td><span class='key'><i style='background:{COLORS.get(x.chain, OTHER)}'></i>"
        f"{escape(x.chain)}</span></td><td>{units.size(x.compressed)}</td>"
        f"<td>{units.size(x.uncompressed)}</td>"
        f"<td class='wrap'>{escape(_short(x.created_by) or '(history not recorded)')}</td></tr>"
        for x in sizes.layers
    )
    return (
        f"<section><h2>Layers of {escape(sizes.image)}</h2><table><tr><th>chain layer</th>"
        "<th>compressed</th><th>uncompressed</th><th class='l'>created by</th></tr>"
        + rows
        + "</table></section>"
    )


def _short(text: str) -> str:
    text = text.removesuffix(" # buildkit")
    return text if len(text) <= 160 else text[:159] + "…"
