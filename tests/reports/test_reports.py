"""Report logic without a daemon: layer tarballs, chain split, gate, ratchet, history, renders."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
from lxml import etree

from buildkit.config.budgets import Budget
from buildkit.engine.progress import Step
from buildkit.reports import baseline, gate, history, junit, markdown, units
from buildkit.reports.document import DeployPull, Report, deploy_pull, pushed_bytes
from buildkit.reports.layerfiles import LayerFiles, grown_files, merge, read_tar
from buildkit.reports.model import ImageSizes, Layer, split
from buildkit.reports.times import LayerTimes, RunTimes

DATA = Path(__file__).parents[1] / "data" / "reports"
MB = 1_000_000


def layer_tar(entries: list[tuple[str, str, object]]) -> io.BytesIO:
    """A gzip layer tarball: (kind, path, payload) with kind file/dir/symlink/hardlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for kind, path, payload in entries:
            info = tarfile.TarInfo(path)
            data = b""
            if kind == "file":
                data = bytes(int(str(payload)))
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            archive.addfile(info, io.BytesIO(data) if data else None)
    buffer.seek(0)
    return buffer


def test_layer_size_counts_files_and_symlink_targets_like_the_daemon() -> None:
    layer = read_tar(
        layer_tar(
            [
                ("dir", "app/", None),
                ("file", "app/a.rb", 1000),
                ("symlink", "app/current", "a.rb"),
                ("hardlink", "app/again.rb", "app/a.rb"),
                ("file", "./app/b.rb", 24),
            ]
        )
    )
    assert layer.uncompressed == 1000 + len("a.rb") + 24
    assert layer.files == {
        "/app/a.rb": 1000,
        "/app/current": 4,
        "/app/again.rb": 0,
        "/app/b.rb": 24,
    }


def test_whiteouts_and_opaque_dirs_delete_lower_files() -> None:
    lower = read_tar(
        layer_tar([("file", "etc/a", 5), ("file", "var/cache/x", 7), ("file", "var/cache/y", 9)])
    )
    upper = read_tar(
        layer_tar(
            [
                ("file", "etc/.wh.a", 0),
                ("file", "var/cache/.wh..wh..opq", 0),
                ("file", "var/cache/z", 3),
            ]
        )
    )
    assert upper.deleted == ("/etc/a",)
    assert upper.opaque == ("/var/cache",)
    assert upper.uncompressed == 3
    assert merge([lower, upper]) == {"/var/cache/z": 3}


def test_grown_files_lists_new_and_grown_largest_first() -> None:
    before = {"/app/a": 10, "/app/b": 500, "/app/c": 7}
    after = {"/app/a": 10, "/app/b": 900, "/app/big.bin": 20 * MB, "/app/c": 1}
    grown = grown_files(before, after)
    assert [(g.path, g.before, g.after) for g in grown] == [
        ("/app/big.bin", None, 20 * MB),
        ("/app/b", 500, 900),
    ]


def image(layer: str, levels: dict[str, list[tuple[str, int, int]]], tag: str = "1") -> ImageSizes:
    """An ImageSizes from per-level layers (digest, compressed, uncompressed)."""
    layers = tuple(
        Layer(digest=d, diff_id=f"diff-{d}", compressed=c, uncompressed=u, chain=level)
        for level, items in levels.items()
        for d, c, u in items
    )
    return ImageSizes(
        layer=layer,
        image=f"127.0.0.1:5000/shop-{layer}:{tag}",
        key=tag,
        digest=f"sha256:{layer}{tag}",
        source="registry",
        compressed=sum(x.compressed or 0 for x in layers),
        uncompressed=sum(x.uncompressed or 0 for x in layers),
        layers=layers,
        chain=split(layers),
    )


OS = [("os1", 40 * MB, 100 * MB)]
RUBY = [("rb1", 30 * MB, 60 * MB), ("rb2", 100, 0)]
BASE = [("gems", 3 * MB, 6 * MB)]


def app(tag: str, source: list[tuple[str, int, int]]) -> ImageSizes:
    return image("app", {"os": OS, "ruby": RUBY, "base": BASE, "app": source}, tag)


def test_chain_split_sums_each_level_and_adds_up_to_the_image() -> None:
    sizes = app("1", [("src", 8000, 21000)])
    assert list(sizes.chain) == ["os", "ruby", "base", "app"]
    assert sizes.chain["ruby"].compressed == 30 * MB + 100
    assert sizes.chain["ruby"].layers == 2
    assert sum(s.compressed or 0 for s in sizes.chain.values()) == sizes.compressed
    assert sum(s.uncompressed or 0 for s in sizes.chain.values()) == sizes.uncompressed


def test_deploy_pull_counts_only_layers_the_node_lacks() -> None:
    before = app("1", [("src1", 8000, 21000)])
    after = app("2", [("src2", 9000, 22000)])
    delta = deploy_pull(after, before, "history")
    assert isinstance(delta, DeployPull)
    assert (delta.compressed, delta.layers) == (9000, 1)
    assert delta.compressed == after.chain["app"].compressed
    assert deploy_pull(after, None, "") is None


def test_pushed_bytes_skip_layers_of_the_parent_and_the_previous_image() -> None:
    base = image("base", {"os": OS, "ruby": RUBY, "base": BASE})
    current = app("2", [("src2", 9000, 22000)])
    records = [{"images": [history.compact_image(app("1", [("src1", 8000, 1)]))]}]
    result = pushed_bytes({"base": base, "app": current}, records, ["app"])
    assert result == {"app": 9000}


def budgets(**app_budget: object) -> dict[str, Budget]:
    return {"app": Budget(**app_budget)}  # type: ignore[arg-type]


def test_growth_over_the_budget_fails_and_names_the_level_and_file(tmp_path: Path) -> None:
    old = app("1", [("src1", 8000, 21000)])
    new = app("2", [("src1", 8000, 21000), ("big", 20 * MB + 6000, 20 * MB)])
    base = baseline.Baseline(source="imgbuild-baseline.json", images={"app": old})
    [check] = gate.evaluate([new], base, budgets(max_growth=0.05))
    assert not check.passed
    assert check.baseline == old.compressed
    grew = gate.level_growth(new, old, "compressed")
    assert grew[0].level == "app"
    assert grew[0].growth == 20 * MB + 6000
    explained = dataclasses.replace(
        check,
        grew=tuple(grew),
        files=tuple(grown_files({}, {"/app/big.bin": 20 * MB})),
        against_baseline=True,
    )
    sentence = explained.sentence()
    assert "the app layer (app source) grew +20.0 MB" in sentence
    assert "/app/big.bin 20.0 MB (new)" in sentence
    assert "more than max_growth 5.0%" in sentence


def test_growth_within_budget_and_max_bytes_pass() -> None:
    old = app("1", [("src1", 8000, 21000)])
    new = app("2", [("src2", 9000, 21000)])
    base = baseline.Baseline(source="b.json", images={"app": old})
    checks = gate.evaluate([new], base, budgets(max_growth=0.05, max_bytes=350 * MB))
    assert [c.rule for c in checks] == ["max_bytes", "max_growth"]
    assert all(c.passed for c in checks)
    assert gate.failed(checks) == []


def test_max_bytes_uses_the_configured_metric() -> None:
    sizes = app("1", [("src1", 8000, 21000)])
    [compressed] = gate.evaluate([sizes], None, budgets(max_bytes=100 * MB, max_growth=None))
    [uncompressed] = gate.evaluate(
        [sizes], None, budgets(max_bytes=100 * MB, max_growth=None, metric="uncompressed")
    )
    assert compressed.passed
    assert not uncompressed.passed
    assert "uncompressed" in uncompressed.sentence()


def test_growth_without_baseline_is_skipped_not_passed() -> None:
    [check] = gate.evaluate([app("1", [("s", 1, 1)])], None, budgets())
    assert check.skipped is not None
    assert "--update-baseline" in check.skipped
    assert gate.failed([check]) == []


def test_ratchet_lowers_on_shrink_and_keeps_on_growth() -> None:
    old_app = app("1", [("src1", 8000, 21000)])
    old = baseline.Baseline(source="b.json", images={"app": old_app})
    smaller = app("2", [("src2", 7000, 20000)])
    images, lines = baseline.ratchet(old, [smaller], {"app": "compressed"})
    assert images["app"] is smaller
    assert "app:" in lines[0]
    bigger = app("3", [("src3", 9000, 22000)])
    images, lines = baseline.ratchet(old, [bigger], {"app": "compressed"})
    assert images["app"] is old_app
    assert "kept" in lines[0]


def test_baseline_file_round_trips_and_rejects_foreign_json(tmp_path: Path) -> None:
    path = tmp_path / "imgbuild-baseline.json"
    sizes = app("1", [("src1", 8000, 21000)])
    baseline.write(path, {"app": sizes}, "abc123")
    loaded = baseline.load(path)
    assert loaded is not None
    assert loaded.images["app"] == sizes
    assert baseline.load(tmp_path / "missing.json") is None
    path.write_text(json.dumps({"app": 1}))
    with pytest.raises(Exception, match="not an imgbuild baseline"):
        baseline.load(path)


def test_history_appends_whole_lines_under_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "history" / "shop.jsonl"

    def writer(n: int) -> None:
        for i in range(10):
            history.append(path, {"schema": history.SCHEMA, "n": n, "i": i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = history.read(path)
    assert len(records) == 40
    assert not list(path.parent.glob("*.tmp"))


def test_history_keeps_the_newest_records_and_finds_the_previous_app(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    for tag in ("1", "2", "2"):
        sizes = app(tag, [(f"src{tag}", 8000, 21000)])
        history.append(path, {"schema": history.SCHEMA, "images": [history.compact_image(sizes)]})
    records = history.read(path)
    previous = history.previous(records, "app", "sha256:app2")
    assert previous is not None
    assert previous.digest == "sha256:app1"
    assert previous.layer_digests["src1"] == 8000
    path.write_text(path.read_text() + "{torn\n")
    assert len(history.read(path)) == 3


def test_time_breakdown_adds_up_to_the_wall_time() -> None:
    steps = (
        Step(name="[internal] load build context", seconds=0.2, cached=False, internal=True),
        Step(name="[1/2] FROM base", seconds=0.0, cached=True, internal=True),
        Step(name="[2/3] RUN bundle install", seconds=0.0, cached=True),
        Step(name="[3/3] COPY . /app/", seconds=1.1, cached=False),
    )
    app_times = LayerTimes(
        layer="app",
        built=True,
        pushed=True,
        build_seconds=2.0,
        push_seconds=0.7,
        steps=steps,
        pushed_bytes=9000,
    )
    base_times = LayerTimes(
        layer="base", built=False, pushed=False, build_seconds=0.0, push_seconds=0.0, steps=()
    )
    run = RunTimes(wall_seconds=3.5, layers=(base_times, app_times), phases={"plan": 0.4})
    assert app_times.overhead_seconds == pytest.approx(0.7)
    assert app_times.cache_ratio == pytest.approx(0.5)
    assert sum(s for _, s in run.breakdown()) == pytest.approx(run.wall_seconds)
    assert run.unattributed_seconds == pytest.approx(0.4)
    data = run.as_json()
    assert data["cache"] == {"cached": 1, "executed": 1, "ratio": 0.5}
    assert data["pushed_bytes"] == 9000


def report_with_checks() -> Report:
    old = app("1", [("src1", 8000, 21000)])
    new = app("2", [("src1", 8000, 21000), ("big", 20 * MB, 20 * MB)])
    base = baseline.Baseline(source="imgbuild-baseline.json", images={"app": old})
    ruby = image("ruby", {"os": OS, "ruby": RUBY})
    checks = gate.evaluate(
        [ruby, new], base, {"ruby": Budget(max_bytes=1 * MB), "app": Budget(max_bytes=350 * MB)}
    )
    return Report(
        project="shop",
        commit="abc",
        branch="main",
        images=(ruby, new),
        baseline=base,
        checks=tuple(checks),
    )


def test_junit_has_one_case_per_budget_and_passes_the_schema(tmp_path: Path) -> None:
    report = report_with_checks()
    path = tmp_path / "size.xml"
    junit.write(report, path)
    schema = etree.XMLSchema(etree.parse(str(DATA / "junit-10.xsd")))
    document = etree.parse(str(path))
    schema.assertValid(document)
    cases = document.findall(".//testcase")
    assert len(cases) == len(report.checks) == 4
    failures = document.findall(".//testcase/failure")
    assert {f.getparent().get("name") for f in failures} == {
        "ruby: compressed size ≤ 1.0 MB (max_bytes)",
        "app: compressed growth ≤ 5.0% over the baseline",
    }
    assert document.find(".//testcase/skipped") is not None  # ruby has no baseline entry
    suite = document.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")


def test_markdown_shows_change_against_the_baseline() -> None:
    text = markdown.render(report_with_checks())
    assert "2 size budget(s) exceeded" in text
    assert "| `app` | 93.0 MB | **+20.0 MB (+27.4%)** | 186.0 MB | **+20.0 MB (+12.0%)** |" in text
    assert "baseline `imgbuild-baseline.json`" in text
    assert "| image | OS base image | Ruby | OS packages + gems | app source |" in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (21_500, "21.5 kB"),
        (78_876_292, "78.9 MB"),
        (2 * 10**9, "2.0 GB"),
    ],
)
def test_sizes_read_in_si_units(value: int, text: str) -> None:
    assert units.size(value) == text


def test_changes_are_signed() -> None:
    assert units.change(120, 100) == "+20 B (+20.0%)"
    assert units.change(90, 100) == "-10 B (-10.0%)"
    assert units.change(None, 100) == "–"
    assert units.seconds(75.25) == "1m15.2s"


def test_layer_files_equality_is_by_content() -> None:
    a = LayerFiles(uncompressed=1, files={"/a": 1})
    assert a == LayerFiles(uncompressed=1, files={"/a": 1})


def test_levels_that_cannot_be_identified_are_counted_in_the_next_one_and_noted() -> None:
    from buildkit.reports.measure import Target, _attribute, _Facts

    ids = ["os1", "rb1", "rb2", "gems", "src"]
    facts = _Facts(
        image="r/app:1",
        digest=None,
        source="registry",
        config_digest=None,
        diff_ids=ids,
        digests=ids,
        compressed=[1] * 5,
        uncompressed=[1] * 5,
        created_by=[""] * 5,
    )
    target = Target(layer="app", image="r/app:1")
    known = [("os", ["os1"]), ("ruby", ids[:3]), ("base", ids[:4])]
    assert _attribute(target, facts, known) == (["os", "ruby", "ruby", "base", "app"], [])
    unknown_os = [("os", None), ("ruby", ids[:3]), ("base", ids[:4])]
    chains, notes = _attribute(target, facts, unknown_os)
    assert chains == ["ruby", "ruby", "ruby", "base", "app"]
    assert notes == ["os layers not identified; counted in ruby"]
    foreign_base = [("os", ["os1"]), ("ruby", ids[:3]), ("base", ["other", "x", "y", "z"])]
    chains, notes = _attribute(target, facts, foreign_base)
    assert chains == ["os", "ruby", "ruby", "app", "app"]
    assert "does not start with the base image's layers" in notes[0]


def test_history_append_caps_records_and_drops_torn_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_RECORDS", 5)
    monkeypatch.setattr(history, "TRIM_SLACK", 2)
    path = tmp_path / "h.jsonl"
    for i in range(3):
        history.append(path, {"schema": history.SCHEMA, "i": i})
    path.write_text(path.read_text() + '{"schema": "imgbuild.history/v1", "i": 99\n')  # killed
    for i in range(3, 8):
        history.append(path, {"schema": history.SCHEMA, "i": i})
    # Appended in place until 5 + 2 lines, then trimmed to the newest 5 (the torn line gone).
    lines = path.read_text().splitlines()
    assert [json.loads(line)["i"] for line in lines] == [2, 3, 4, 5, 6, 7]
    assert [r["i"] for r in history.read(path)] == [3, 4, 5, 6, 7]


def test_history_append_after_a_half_written_line_starts_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history.append(path, {"schema": history.SCHEMA, "i": 0})
    with path.open("a") as f:
        f.write('{"schema": "imgbuild.history/v1", "i": ')  # killed mid-write, no newline
    history.append(path, {"schema": history.SCHEMA, "i": 1})
    assert [r["i"] for r in history.read(path)] == [0, 1]
    assert len(path.read_text().splitlines()) == 3  # the torn line kept apart, not glued on


def test_recent_records_answer_like_a_full_read_parsing_only_what_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.jsonl"
    for i in range(40):
        sizes = app(str(i // 10), [(f"src{i // 10}", 8000, 21000)])  # ten runs per image
        history.append(path, {"schema": history.SCHEMA, "i": i,
                              "images": [history.compact_image(sizes)]})  # fmt: skip
    with path.open("a") as f:
        f.write("{torn\n")
    full = history.read(path)
    parsed: list[str] = []
    real = history.json.loads

    def counting(text: str) -> object:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(history.json, "loads", counting)
    recent = history.Recent(path)
    previous = history.previous(recent, "app", "sha256:app3")
    assert previous == history.previous(full, "app", "sha256:app3")
    assert len(parsed) == 12  # the torn line, ten of app3, then the first of app2
    assert history.measured_layers(recent) == history.measured_layers(full)
    assert len(parsed) == 21  # the newest 20 records, no more
    assert list(recent) == full
    assert recent[-1] == full[-1]
    assert len(recent) == len(full) == 40
