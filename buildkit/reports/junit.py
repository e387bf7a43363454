"""`--junit FILE`: one test case per image budget, for a CodeBuild report group (JUNITXML).

A failed budget is a <failure> whose message is the gate's one-line explanation; a budget that
could not be checked (no baseline yet, image not pushed) is <skipped>. The sizes of the image go
to <system-out>, so the report group shows them next to the verdict.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from buildkit import fsutil
from buildkit.reports import units
from buildkit.reports.document import Report
from buildkit.reports.gate import Check
from buildkit.reports.model import CHAIN, CHAIN_LABELS


def _sizes_text(report: Report, layer: str) -> str:
    sizes = report.image(layer)
    if sizes is None:
        return f"{layer}: not measured"
    lines = [
        f"{sizes.image}",
        f"compressed {units.size(sizes.compressed)} ({sizes.compressed} bytes), "
        f"uncompressed {units.size(sizes.uncompressed)} ({sizes.uncompressed} bytes)",
    ]
    for level in CHAIN:
        seg = sizes.chain.get(level)
        if seg:
            lines.append(
                f"  {CHAIN_LABELS[level]}: compressed {units.size(seg.compressed)}, "
                f"uncompressed {units.size(seg.uncompressed)}"
            )
    return "\n".join(lines)


def _case(parent: ET.Element, report: Report, check: Check) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        {"classname": f"imgbuild.size.{check.layer}", "name": check.name, "time": "0"},
    )
    if check.skipped:
        ET.SubElement(case, "skipped", {"message": check.skipped})
    elif not check.passed:
        failure = ET.SubElement(
            case, "failure", {"type": "SizeRegression", "message": check.sentence()}
        )
        failure.text = check.sentence()
    out = ET.SubElement(case, "system-out")
    out.text = _sizes_text(report, check.layer)


def render(report: Report) -> str:
    checks = list(report.checks)
    failures = sum(1 for c in checks if not c.passed and c.skipped is None)
    skipped = sum(1 for c in checks if c.skipped)
    root = ET.Element(
        "testsuites",
        {
            "name": "imgbuild size",
            "tests": str(len(checks)),
            "failures": str(failures),
            "errors": "0",
            "time": "0",
        },
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": f"imgbuild.size.{report.project}",
            "tests": str(len(checks)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "time": "0",
            "timestamp": report.generated_at.removesuffix("Z"),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("baseline", report.baseline.source if report.baseline else "none"),
        ("commit", report.commit or ""),
        ("branch", report.branch or ""),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for check in checks:
        _case(suite, report, check)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(report: Report, path: Path) -> None:
    fsutil.atomic_write_text(path, render(report))
