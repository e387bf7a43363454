"""`imgbuild report --markdown`: a pull-request comment with the change against the baseline."""

from __future__ import annotations

import html
import re

from buildkit.reports import units
from buildkit.reports.document import Report
from buildkit.reports.model import CHAIN, CHAIN_LABELS
from buildkit.reports.verified import Verify

#: Failed tests a comment lists with their messages; the rest are counted.
LISTED_FAILED = 50
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _text(text: str) -> str:
    """Arbitrary text (a test's failure message) as inert Markdown on one line: no HTML, no
    emphasis, links or table breaks."""
    flat = " ".join(text.split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def _code(text: str) -> str:
    """Arbitrary text as an inline code span, whatever backticks it holds."""
    flat = " ".join(text.split()) or " "
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


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


def _verdict(verify: Verify) -> str:
    tests = verify.tests
    if verify.passed:
        return "✅ passed"
    if tests is not None and tests.exit_code is None:
        return "❌ the tests did not finish"
    if tests is not None and tests.not_passed:
        return f"❌ {tests.not_passed} test(s) failed"
    if verify.error:
        return f"❌ {_text(verify.error)}"
    return f"❌ the tests exited {tests.exit_code if tests else '?'}"


def _verify(verify: Verify) -> list[str]:
    tests = verify.tests
    out = [f"#### Verify — {_verdict(verify)}", ""]
    if verify.services:
        ready = ", ".join(
            f"{_code(name)} {units.seconds(seconds)}" for name, seconds in verify.services.items()
        )
        out.append(f"- **Services ready:** {ready}")
    if verify.smoke:
        smoke = verify.smoke
        out.append(
            f"- **Smoke check:** {_code(smoke.check or 'check')} → {smoke.answer} in "
            f"{units.seconds(smoke.seconds)}" + (f" ({_code(smoke.image)})" if smoke.image else "")
        )
    if tests:
        finished = (
            "did not finish"
            if tests.exit_code is None
            else f"exited {tests.exit_code} in {units.seconds(tests.seconds)}"
        )
        out.append(
            f"- **Tests:** {tests.passed} passed, {tests.failures} failed, {tests.errors} "
            f"errors, {tests.skipped} skipped of {tests.tests}; "
            f"{_code(tests.command or 'the test command')} {finished}"
        )
    if verify.junit:
        out.append(f"- **JUnit:** {', '.join(_code(path) for path in verify.junit)}")
    if tests and tests.unreadable:
        out.append(f"- **Unreadable JUnit:** {', '.join(_code(p) for p in tests.unreadable)}")
    if not (verify.smoke or tests):
        out.append(f"- No smoke check or tests ran ({units.seconds(verify.seconds)}).")
    if tests and tests.failed:
        out += ["", "Failed tests:", ""]
        out += [
            f"- {_code(f.name)}" + (f": {_text(f.message)}" if f.message else "")
            for f in tests.failed[:LISTED_FAILED]
        ]
        more = tests.not_passed - min(len(tests.failed), LISTED_FAILED)
        if more > 0:
            out.append(f"- and {more} more")
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
    if report.verify:
        lines += [*_verify(report.verify), ""]
    return "\n".join(lines)
