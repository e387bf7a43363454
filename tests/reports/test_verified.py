"""The verify part of a report: its JSON, the terminal line, Markdown and HTML, the history."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from buildkit import reports
from buildkit.reports import collect, history, markdown, table, verified
from buildkit.reports import html as htmlmod
from buildkit.reports.document import Report
from buildkit.reports.model import ImageSizes
from buildkit.reports.verified import Verify
from buildkit.run import junitfiles, smoke
from buildkit.run import verify as verifymod

JUNIT = "/work/out/verify/tests/TEST-app.xml"
OWN = "/work/out/verify/imgbuild-verify.xml"


def verify_result(failed: list[tuple[str, str]] | None = None, **summary: int) -> dict[str, Any]:
    """`VerifyResult.as_json()` of a run: the real class, so the keys stay in step with it."""
    failures = [junitfiles.Failed(name=n, message=m) for n, m in failed or []]
    result = verifymod.VerifyResult(
        run_id="shop-verify-1",
        out_dir=Path("/work/out/verify"),
        seconds=14.2,
        services={"postgres": 2.14, "redis": 0.4},
        smoke=smoke.SmokeResult(
            image="127.0.0.1:5000/shop-app:abc",
            target="GET /up",
            status=200,
            seconds=3.91,
            log_file=Path("/work/out/verify/app.log"),
        ),
        tests=verifymod.TestsResult(
            image="127.0.0.1:5000/shop-app-test:abc",
            command="bin/test",
            exit_code=1 if failures else 0,
            seconds=8.1,
            junit=[Path(JUNIT)],
            summary=junitfiles.Summary(
                tests=summary.get("tests", 12),
                failures=summary.get("failures", len(failures)),
                errors=summary.get("errors", 0),
                skipped=summary.get("skipped", 0),
                failed=failures,
            ),
            timeout=600,
        ),
        junit=[Path(OWN), Path(JUNIT)],
    )
    return result.as_json()


def sizes() -> ImageSizes:
    return ImageSizes(
        layer="app",
        image="127.0.0.1:5000/shop-app:abc",
        key="abc",
        digest="sha256:app",
        source="registry",
        compressed=1000,
        uncompressed=2000,
    )


def report(verify: dict[str, Any] | None = None) -> Report:
    return Report(
        project="shop",
        commit="abc",
        branch="main",
        images=(sizes(),),
        verify=verified.parse(verify),
    )


def printed(rep: Report) -> str:
    out = io.StringIO()
    table.print_report(rep, out)
    return out.getvalue()


def failing(count: int) -> dict[str, Any]:
    return verify_result([(f"OrderTest#test_{n}", f"expected {n}") for n in range(count)])


# JSON


def test_verify_result_round_trips_through_the_report_json() -> None:
    data = verify_result([("OrderTest#test_total", "Expected 3, got 4")], tests=12, skipped=1)
    parsed = Verify.from_json(data)
    assert parsed.as_json() == data
    assert Verify.from_json(json.loads(json.dumps(parsed.as_json()))) == parsed
    assert report(data).as_json()["verify"] == data
    assert parsed.tests is not None
    assert (parsed.tests.passed, parsed.tests.not_passed, parsed.passed) == (10, 1, False)


def test_a_report_without_verify_has_verify_null_and_nothing_else_changes() -> None:
    plain = report().as_json()
    assert plain["verify"] is None
    with_verify = report(verify_result()).as_json()
    del plain["verify"], with_verify["verify"]
    del plain["generated_at"], with_verify["generated_at"]
    assert plain == with_verify


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"smoke": None, "tests": None},
        {"smoke": {}, "tests": {}},
        {"smoke": {"check": "TCP 3000"}, "tests": {"failed": [{}], "tests": "x"}},
        {"services": "postgres", "junit": "one.xml", "seconds": "soon"},
    ],
)
def test_from_json_tolerates_missing_and_odd_keys(data: dict[str, Any]) -> None:
    parsed = Verify.from_json(data)
    assert parsed.junit == ()
    assert json.loads(json.dumps(parsed.as_json()))["run"] is None
    table.verify_lines(parsed)
    markdown.render(report(data))
    htmlmod.render(report(data), [])


def test_parse_ignores_what_is_not_an_object() -> None:
    assert verified.parse(None) is None
    assert verified.parse([1, 2]) is None
    assert verified.parse("passed") is None


# The terminal


def test_console_line_after_the_tables() -> None:
    text = printed(report(verify_result()))
    line = (
        "verify: smoke GET /up -> 200 in 3.9s; tests 12 passed, 0 failed (bin/test) in 8.1s; "
        f"JUnit: {OWN}, {JUNIT}"
    )
    assert text.splitlines()[-1] == line
    assert "failed:" not in text


def test_console_names_at_most_five_failed_tests() -> None:
    text = printed(report(failing(7)))
    lines = text.splitlines()
    assert lines[-2].startswith("verify: smoke GET /up -> 200 in 3.9s; tests 5 passed, 7 failed")
    assert "(bin/test) exited 1 in 8.1s" in lines[-2]
    assert lines[-1] == (
        "verify: failed: OrderTest#test_0, OrderTest#test_1, OrderTest#test_2, "
        "OrderTest#test_3, OrderTest#test_4 and 2 more"
    )


def test_console_without_verify_prints_no_verify_line() -> None:
    assert "verify" not in printed(report())


def test_console_line_for_a_tcp_check_and_unfinished_tests() -> None:
    data = verify_result()
    data["smoke"]["check"], data["smoke"]["status"] = "TCP 3000", None
    data["tests"]["exit_code"] = None
    data["junit"] = []
    (line,) = table.verify_lines(Verify.from_json(data))
    assert line == (
        "verify: smoke TCP 3000 -> open in 3.9s; tests 12 passed, 0 failed (bin/test) "
        "did not finish in 8.1s"
    )


# Markdown


def test_markdown_has_a_verify_section() -> None:
    text = markdown.render(report(verify_result()))
    section = text[text.index("#### Verify") :]
    assert section.startswith("#### Verify — ✅ passed")
    assert "- **Services ready:** `postgres` 2.1s, `redis` 0.4s" in section
    assert "- **Smoke check:** `GET /up` → 200 in 3.9s (`127.0.0.1:5000/shop-app:abc`)" in section
    assert (
        "- **Tests:** 12 passed, 0 failed, 0 errors, 0 skipped of 12; `bin/test` exited 0 in 8.1s"
    ) in section
    assert f"- **JUnit:** `{OWN}`, `{JUNIT}`" in section
    assert "Failed tests" not in section


def test_markdown_lists_failed_tests_with_inert_messages() -> None:
    data = verify_result([("Cart`Test#test_<b>", "<script>alert(1)</script> *boom* [x](y)")])
    text = markdown.render(report(data))
    assert "#### Verify — ❌ 1 test(s) failed" in text
    assert (
        "- ``Cart`Test#test_<b>``: &lt;script&gt;alert\\(1\\)&lt;/script&gt; \\*boom\\* "
        "\\[x\\]\\(y\\)"
    ) in text
    assert "<script>" not in text


def test_markdown_without_verify_has_no_verify_section() -> None:
    assert "Verify" not in markdown.render(report())


# HTML


def test_html_has_a_verify_section_with_everything_escaped() -> None:
    data = verify_result(
        [("XssTest#test_<img src=x>", "<script>alert('x')</script>")], tests=3, errors=0
    )
    data["services"]["<db>"] = 1.0
    data["junit"].append("/tmp/<evil>.xml")
    page = htmlmod.render(report(data), [])
    section = page[page.index("<h2>Verify") : page.index("</section>", page.index("<h2>Verify"))]
    assert "<span class='fail'>FAIL</span>" in section
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in section
    assert "XssTest#test_&lt;img src=x&gt;" in section
    assert "service <code>&lt;db&gt;</code>" in section
    assert "/tmp/&lt;evil&gt;.xml" in section
    assert "smoke check <code>GET /up</code>" in section
    assert "2 passed, 1 failed, 0 errors, 0 skipped of 3; exit 1" in section
    assert f"JUnit: <code>{JUNIT}</code>" in section


def test_html_without_verify_has_no_verify_section() -> None:
    assert "Verify" not in htmlmod.render(report(), [])


# The history


def test_history_keeps_a_portable_summary_and_report_finds_it_for_the_app_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(  # a line written before verify was recorded
        json.dumps({"schema": history.SCHEMA, "images": [{"layer": "app", "key": "abc"}]}) + "\n"
    )
    assert history.latest_verify(history.read(path), "app", "abc") is None
    history.append(path, collect.record(report(failing(7))))
    history.append(path, collect.record(report()))  # a later run without --verify
    records = history.read(path)
    assert records[-1]["verify"] is None
    kept = records[-2]["verify"]
    assert "/work/out" not in json.dumps(kept)  # no paths of this machine
    assert len(kept["tests"]["failed"]) == verified.HISTORY_FAILED
    found = verified.parse(history.latest_verify(records, "app", "abc"))
    assert found is not None
    assert found.tests is not None
    assert found.smoke is not None
    assert (found.tests.tests, found.tests.failures, found.tests.not_passed) == (12, 7, 7)
    assert (found.smoke.check, found.smoke.status) == ("GET /up", 200)
    assert found.junit == ()
    assert table.verify_lines(found)[-1].endswith("OrderTest#test_4 and 2 more")
    assert history.latest_verify(records, "app", "other-key") is None


# after_run


def test_after_run_passes_verify_to_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    data = verify_result()

    def for_run(*args: Any, **kwargs: Any) -> Report:
        seen.update(kwargs)
        return report(kwargs["verify"])

    monkeypatch.setattr(collect, "for_run", for_run)
    monkeypatch.setattr(table, "print_report", lambda _report: None)
    result = reports.after_run(object(), [], 1.0, verify=data)  # type: ignore[arg-type]
    assert seen["verify"] == data
    assert result["report"]["verify"] == data
    reports.after_run(object(), [], 1.0)  # type: ignore[arg-type]
    assert seen["verify"] is None


def test_a_failed_verdict_without_failed_tests_is_shown_everywhere() -> None:
    """A smoke check that got a 500 fails verify before any test: the verdict is the error."""
    error = "verify.smoke: img answered GET /up with 500, expected 200; body: <b>boom</b>"
    data = {"error": error, "smoke": None, "tests": None, "services": {"db": 1.5}}
    parsed = Verify.from_json(data)
    assert parsed.passed is False
    assert parsed.as_json()["error"] == error
    assert table.verify_lines(parsed)[-1] == f"verify: FAILED: {error}"
    assert f"#### Verify — ❌ {error}".replace("<", "&lt;").replace(">", "&gt;") in (
        markdown.render(report(data))
    )
    page = htmlmod.render(report(data), [])
    assert "<b>boom</b>" not in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page
