"""JUnit XML from a verify run: read what the app's test run wrote, write imgbuild's own.

Reading accepts what minitest reporters, rspec_junit_formatter and CodeBuild accept: a
<testsuites> or <testsuite> root, <testcase> elements with <failure>, <error> or <skipped>.
imgbuild's own file (`imgbuild-verify.xml`) holds one case per check it made (the smoke check, and
the test command as a whole when the tests wrote no JUnit), so a report group always has a verdict.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit import fsutil

OWN_FILE = "imgbuild-verify.xml"
_SHOWN_FAILURES = 5


@dataclass(frozen=True, kw_only=True)
class Failed:
    name: str  # classname#name
    message: str


@dataclass(kw_only=True)
class Summary:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: list[Failed] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "failed": [{"name": f.name, "message": f.message} for f in self.failed],
            "unreadable": self.unreadable,
        }

    def sentence(self) -> str:
        text = (
            f"{self.tests} tests, {self.failures} failures, {self.errors} errors, "
            f"{self.skipped} skipped"
        )
        if self.failed:
            names = ", ".join(f.name for f in self.failed[:_SHOWN_FAILURES])
            more = len(self.failed) - _SHOWN_FAILURES
            text += f"; failed: {names}" + (f" and {more} more" if more > 0 else "")
        return text


def summarize(files: Sequence[Path]) -> Summary:
    summary = Summary()
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError):
            summary.unreadable.append(str(path))
            continue
        for case in root.iter("testcase"):
            _count(summary, case)
    return summary


def _count(summary: Summary, case: ET.Element) -> None:
    summary.tests += 1
    name = f"{case.get('classname') or '?'}#{case.get('name') or '?'}"
    for kind in ("failure", "error"):
        found = case.find(kind)
        if found is not None:
            if kind == "failure":
                summary.failures += 1
            else:
                summary.errors += 1
            text = (found.get("message") or found.text or kind).strip()
            summary.failed.append(
                Failed(name=name, message=text.splitlines()[0][:200] if text else kind)
            )
            return
    if case.find("skipped") is not None:
        summary.skipped += 1


@dataclass(frozen=True, kw_only=True)
class Case:
    name: str
    seconds: float
    failure: str | None = None  # None: passed
    output: str = ""


def write_own(path: Path, cases: Sequence[Case]) -> Path:
    failures = sum(1 for c in cases if c.failure is not None)
    suite = ET.Element(
        "testsuite",
        {
            "name": "imgbuild.verify",
            "tests": str(len(cases)),
            "failures": str(failures),
            "errors": "0",
            "skipped": "0",
            "time": f"{sum(c.seconds for c in cases):.3f}",
            "hostname": socket.gethostname(),
        },
    )
    for case in cases:
        element = ET.SubElement(
            suite,
            "testcase",
            {"classname": "imgbuild.verify", "name": case.name, "time": f"{case.seconds:.3f}"},
        )
        if case.failure is not None:
            failure = ET.SubElement(
                element, "failure", {"type": "VerifyFailed", "message": case.failure[:500]}
            )
            failure.text = case.failure
        if case.output:
            ET.SubElement(element, "system-out").text = case.output[-20000:]
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    fsutil.atomic_write_text(
        path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
    )
    return path
