"""The local batch runner (tests/codebuild_batch.py) on trivial buildspecs, no Docker: it
schedules as CodeBuild's build-graph does (dependencies first, independent entries at once, at
most `parallel`), propagates failures, fails fast, and gives each child its own checkout,
environment and CODEBUILD_* variables."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.codebuild_batch import BatchResult, BatchRunner, Environment
from tests.codebuild_runner import BuildspecError

#: A child waits (bounded) for a file another child writes: it succeeds only if both run at once.
RENDEZVOUS = (
    'touch "$MARKS/$CODEBUILD_BATCH_BUILD_IDENTIFIER"; '
    'for i in $(seq ${TRIES:-100}); do [ -e "$MARKS/$PARTNER" ] && exit 0; sleep 0.1; done; exit 1'
)


def buildspec(graph: list[dict[str, Any]], build: str, fast_fail: bool = False) -> dict[str, Any]:
    return {
        "version": 0.2,
        "batch": {"fast-fail": fast_fail, "build-graph": graph},
        "env": {"shell": "bash", "variables": {"WHO": "buildspec"}},
        "phases": {"build": {"commands": [build]}},
    }


def node(ident: str, *deps: str, **variables: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"identifier": ident}
    if deps:
        entry["depend-on"] = list(deps)
    if variables:
        entry["env"] = {"variables": variables}
    return entry


def run(tmp_path: Path, spec: dict[str, Any], parallel: int = 3, **kwargs: Any) -> BatchResult:
    source = tmp_path / "src"
    source.mkdir(parents=True, exist_ok=True)
    (source / "README").write_text("source\n")
    (source / "batch.yml").write_text(yaml.safe_dump(spec))
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    runner = BatchRunner(
        source,
        tmp_path / "work",
        parallel=parallel,
        project_env={"MARKS": str(marks)},
        timeout=120,
        **kwargs,
    )
    return runner.run("batch.yml")


def test_dependencies_run_first_and_independent_entries_run_at_once(tmp_path: Path) -> None:
    spec = buildspec(
        [
            node("ruby_a", PARTNER="ruby_b"),
            node("ruby_b", PARTNER="ruby_a"),
            node("base", "ruby_a", "ruby_b", PARTNER="base"),
            node("app", "base", PARTNER="app"),
        ],
        RENDEZVOUS,
    )
    result = run(tmp_path, spec)
    assert result.succeeded, result.summary()
    nodes = result.nodes
    assert nodes["base"].started is not None
    assert nodes["base"].started >= max(nodes[n].ended or 0 for n in ("ruby_a", "ruby_b"))
    assert (nodes["app"].started or 0) >= (nodes["base"].ended or 0)


def test_at_most_parallel_children_at_once(tmp_path: Path) -> None:
    spec = buildspec([node(f"n{i}") for i in range(5)], "echo $CODEBUILD_BATCH_BUILD_IDENTIFIER")
    result = run(tmp_path, spec, parallel=2)
    assert result.succeeded, result.summary()
    spans = [(n.started or 0, n.ended or 0) for n in result.nodes.values()]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    # And the bound is what keeps two rendezvousing children apart: with one slot they fail.
    serial = buildspec(
        [node("a", PARTNER="b", TRIES="10"), node("b", PARTNER="a", TRIES="10")], RENDEZVOUS
    )
    assert not run(tmp_path / "serial", serial, parallel=1).succeeded


def test_a_failed_child_fails_its_dependents_which_never_run(tmp_path: Path) -> None:
    spec = buildspec(
        [node("ruby"), node("other"), node("base", "ruby"), node("app", "base")],
        '[ "$CODEBUILD_BATCH_BUILD_IDENTIFIER" != ruby ] || exit 1',
    )
    result = run(tmp_path, spec)
    assert not result.succeeded
    assert result.statuses() == {
        "ruby": "FAILED",
        "other": "SUCCEEDED",
        "base": "FAILED",
        "app": "FAILED",
    }
    assert [n for n, r in result.nodes.items() if r.ran] == ["ruby", "other"]
    assert result.nodes["base"].reason == "dependency ruby did not succeed"
    assert result.nodes["app"].reason == "dependency base did not succeed"
    assert result.nodes["ruby"].exit_code == 1


def test_fast_fail_stops_the_running_children_and_starts_no_more(tmp_path: Path) -> None:
    script = (
        'if [ "$CODEBUILD_BATCH_BUILD_IDENTIFIER" = bad ]; then '
        'for i in $(seq 100); do [ -e "$MARKS/slow" ] && exit 1; sleep 0.1; done; fi; '
        'touch "$MARKS/$CODEBUILD_BATCH_BUILD_IDENTIFIER"; sleep 60'
    )
    spec = buildspec(
        [node("slow"), node("bad"), node("later"), node("after", "slow")], script, True
    )
    result = run(tmp_path, spec, parallel=2)
    assert result.statuses() == {
        "slow": "STOPPED",
        "bad": "FAILED",
        "later": "STOPPED",
        "after": "STOPPED",  # its dependency was still running: the batch stopped it
    }
    assert not result.nodes["later"].ran
    assert not result.nodes["after"].ran
    assert result.wall_seconds < 30, result.summary()


def test_an_ignored_failure_does_not_fail_the_batch(tmp_path: Path) -> None:
    graph = [node("lint"), node("app")]
    graph[0]["ignore-failure"] = True
    spec = buildspec(graph, '[ "$CODEBUILD_BATCH_BUILD_IDENTIFIER" != lint ] || exit 1')
    result = run(tmp_path, spec)
    assert result.statuses() == {"lint": "FAILED", "app": "SUCCEEDED"}
    assert result.succeeded


class Recorded:
    """An environment of the test's own: a number per child, and when it was torn down."""

    counter = itertools.count(1)

    def __init__(self, log: list[str], ident: str) -> None:
        self.number = next(self.counter)
        self.env = {"DOCKER_HOST": f"unix:///engines/{self.number}.sock", "WHO": "engine"}
        self.log = log
        self.ident = ident

    def records(self) -> dict[str, Any]:
        return {"engine": self.number}


def test_each_child_has_its_own_checkout_engine_and_codebuild_variables(tmp_path: Path) -> None:
    log: list[str] = []
    lock = threading.Lock()

    @contextmanager
    def engine(ident: str, workdir: Path) -> Iterator[Environment]:
        with lock:
            log.append(f"up {ident}")
        yield Recorded(log, ident)
        with lock:
            log.append(f"down {ident}")

    show = (
        'printf "%s|%s|%s|%s|%s|%s\\n" "$CODEBUILD_BATCH_BUILD_IDENTIFIER" "$CODEBUILD_BUILD_ID" '
        '"$CODEBUILD_INITIATOR" "$DOCKER_HOST" "$WHO" "$(pwd)" '
        '> "$MARKS/$CODEBUILD_BATCH_BUILD_IDENTIFIER"; '
        "cat README; echo changed > README"
    )
    spec = buildspec([node("ruby"), node("app", "ruby", WHO="entry")], show)
    result = run(
        tmp_path,
        spec,
        engine=engine,
        project="shop-batch",
        batch_env={"CODEBUILD_SOURCE_VERSION": "main"},
    )
    assert result.succeeded, result.summary()
    seen = {
        ident: (tmp_path / "marks" / ident).read_text().strip().split("|")
        for ident in ("ruby", "app")
    }
    for ident, (got, build_id, initiator, host, _who, cwd) in seen.items():
        assert got == ident
        assert build_id.startswith("shop-batch:")
        assert build_id == result.nodes[ident].build_id
        assert initiator == result.batch_id
        assert host.startswith("unix:///engines/")
        assert cwd == str(result.nodes[ident].workdir)
        assert "batch.yml" in {p.name for p in Path(cwd).iterdir()}
    assert seen["ruby"][1] != seen["app"][1]
    assert seen["ruby"][3] != seen["app"][3]
    assert (seen["ruby"][4], seen["app"][4]) == ("engine", "entry")  # the entry's env wins
    assert (tmp_path / "src" / "README").read_text() == "source\n"
    assert log == ["up ruby", "down ruby", "up app", "down app"]
    assert result.nodes["app"].engine["engine"] != result.nodes["ruby"].engine["engine"]


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ([node("shop-app")], "alphanumeric characters and underscores"),
        ([node("x" * 128)], "less than 128"),
        ([node("app", "base"), node("base")], "not defined before it"),
        ([node("app"), node("app")], "used twice"),
    ],
)
def test_graphs_codebuild_refuses_are_refused(
    tmp_path: Path, graph: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(BuildspecError, match=message):
        run(tmp_path, buildspec(graph, "true"))
