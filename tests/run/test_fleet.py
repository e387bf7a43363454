"""run.fleet: the graph of several apps' layers (deduplicated) and the parallel runner, with real
tiny node functions and the real test monorepo's configs."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from buildkit import log, proc
from buildkit.config import loading
from buildkit.errors import BuildFailedError, ImgbuildError
from buildkit.run import fleet
from tests import monorepo


def test_apps_on_one_ruby_share_its_node(tmp_path: Path) -> None:
    configs = loading.resolve_all(monorepo.lay_out(tmp_path), env={"MONO_PREFIX": "unit"})
    nodes, chains = fleet.graph(configs, "app")
    rubies = [n for n in nodes.values() if n.layer == "ruby"]
    assert len(rubies) == 2  # web and api share one, worker's configure options differ
    assert chains[0][0] == chains[1][0] != chains[2][0]
    assert {n.image.rsplit(":", 1)[0] for n in rubies} == {"127.0.0.1:5000/unit-ruby"}
    assert len(nodes) == 2 + 3 + 3
    assert nodes[chains[1][0]].config.app_key == "web"  # built for the first app that needs it
    for chain in chains:  # each layer's parent is the layer below it in the app's chain
        assert [nodes[i].parent for i in chain] == [None, *chain[:-1]]
    base_nodes, _ = fleet.graph(configs, "base")
    assert {n.layer for n in base_nodes.values()} == {"ruby", "base"}


def test_parents_run_before_children_in_order() -> None:
    order: list[str] = []
    parents = {"ruby": (), "base-a": ("ruby",), "app-a": ("base-a",), "base-b": ("ruby",)}
    assert fleet.run_graph(parents, order.append, jobs=1) == {}
    assert order == ["ruby", "base-a", "app-a", "base-b"]  # ready ones in the mapping's order


def test_a_failure_fails_its_dependents_and_the_rest_goes_on() -> None:
    ran: list[str] = []

    def work(node: str) -> None:
        ran.append(node)
        if node == "ruby-1":
            raise BuildFailedError("ruby-1: compile failed")

    parents = {
        "ruby-1": (),
        "base-a": ("ruby-1",),
        "app-a": ("base-a",),
        "ruby-2": (),
        "base-b": ("ruby-2",),
    }
    failures = fleet.run_graph(parents, work, jobs=2)
    assert sorted(ran) == ["base-b", "ruby-1", "ruby-2"]
    assert set(failures) == {"ruby-1", "base-a", "app-a"}
    assert isinstance(failures["app-a"], fleet.DependencyFailed)
    assert failures["app-a"].exit_code == BuildFailedError.exit_code
    assert "app-a: not built: a layer it is built on failed" in str(failures["app-a"])


def test_at_most_jobs_nodes_run_at_once() -> None:
    """Pairs meet at a barrier: with jobs=2 the four nodes run two by two (the barrier would
    break if they could not run together), and a third never starts beside them."""
    lock = threading.Lock()
    active, peak = [0], [0]
    barrier = threading.Barrier(2, timeout=30)

    def work(_node: str) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        barrier.wait()
        with lock:
            active[0] -= 1

    assert fleet.run_graph(dict.fromkeys("abcd", ()), work, jobs=2) == {}
    assert peak[0] == 2


def test_one_job_runs_one_node_at_a_time() -> None:
    lock = threading.Lock()
    active, peak = [0], [0]

    def work(_node: str) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        with lock:
            active[0] -= 1

    assert fleet.run_graph(dict.fromkeys("abcdef", ()), work, jobs=1) == {}
    assert peak[0] == 1


def test_an_interrupt_stops_the_running_builds() -> None:
    """Ctrl-C reaches the main thread only: the builds in the worker threads (streamed children
    in process groups of their own) must be stopped too, not waited for."""

    def work(_node: str) -> None:
        def on_line(line: str) -> None:
            if line == "started":  # the child runs: now the user presses Ctrl-C
                os.kill(os.getpid(), signal.SIGINT)

        proc.stream(["sh", "-c", "echo started; sleep 60"], on_line)

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fleet.run_graph({"a": (), "b": ("a",)}, work, jobs=2)  # one SIGINT: b waits on a
    assert time.monotonic() - began < 30


def test_each_thread_s_lines_carry_its_scope(capsys: pytest.CaptureFixture[str]) -> None:
    def work(node: str) -> None:
        with log.scope(f"{node}/base"):
            log.info("building")

    fleet.run_graph({"web": (), "api": ()}, work, jobs=2)
    log.info("done")
    lines = sorted(capsys.readouterr().err.splitlines())
    assert lines == [
        "[api/base] imgbuild: building",
        "[web/base] imgbuild: building",
        "imgbuild: done",
    ]


def test_a_node_whose_parent_is_not_in_the_graph_is_a_bug() -> None:
    with pytest.raises(ValueError, match="parents are not nodes"):
        fleet.run_graph({"base": ("ruby",)}, lambda _n: None, jobs=1)


def test_first_failure_prefers_a_layer_s_own_error(tmp_path: Path) -> None:
    configs = loading.resolve_all(monorepo.lay_out(tmp_path), env={})
    own = ImgbuildError("worker/ruby: failed")
    runs = [
        fleet.AppRun(configs[0], (), [], {}, fleet.DependencyFailed("x", own), frozenset()),
        fleet.AppRun(configs[1], (), [], {}, own, frozenset()),
    ]
    assert fleet.first_failure(runs) is own
    assert fleet.first_failure(runs[:0]) is None


def test_default_jobs_is_at_least_one_and_at_most_the_cpus() -> None:
    assert 1 <= fleet.default_jobs() <= (os.cpu_count() or 1)
