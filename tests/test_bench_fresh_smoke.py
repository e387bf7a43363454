"""Issue 17's bench cases (bench/fresh_cases.py): selected as documented (never in the default run
nor in --quick, in the full --large run), each case's code path run end to end or on fakes, the
fresh daemon's network (its own bridge and forward.py's HTTP proxy) working.

Nothing here asserts on time or on pass/fail of a target: the slow tests check that the harness
runs P2-ONESHOT, P8 (with its no-daemon run) and P5-BYTES on the example app with one pair and
prints real numbers (~20 s warm), and that a fresh daemon started with network=True runs a RUN step
that fetches from Debian's archive through the proxy (~10 s), as P4-FRESH's base builds do. P4-FRESH
itself needs the large app (minutes per sample), so its row logic runs on a fake app.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"


@pytest.fixture
def bench_modules() -> Iterator[None]:
    """bench/ on sys.path, and its modules (top-level names: run, tools, cases…) gone after."""
    before = set(sys.modules)
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))
        for name in set(sys.modules) - before:
            if str(BENCH) in str(getattr(sys.modules[name], "__file__", "") or ""):
                del sys.modules[name]


def test_fresh_cases_are_in_the_full_run_only(bench_modules: None) -> None:
    import fresh_cases
    import run

    fresh = set(fresh_cases.CASES)
    assert fresh == {"P8", "P5-BYTES", "P2-ONESHOT", "P4-FRESH"}
    assert not fresh & set(run.ALL_CASES)
    assert run.parse_args([]).cases == ",".join(run.ALL_CASES)
    assert run.parse_args(["--quick"]).cases == ",".join(run.ALL_CASES)
    assert run.parse_args(["--quick", "--large"]).cases == ",".join(run.ALL_CASES)
    for full in (["--large"], ["--large-only"]):
        assert set(run.parse_args(full).cases.split(",")) == set(run.ALL_CASES) | fresh
    assert run.parse_args(["--large", "--cases", "P1"]).cases == "P1"
    for case in fresh_cases.CASES:
        assert case in (run.__doc__ or ""), f"{case} is not documented in bench/run.py"


def _routes(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[str]]]:
    """Which app each wanted case runs on (run._run_engine, with the apps and cases faked)."""
    import run

    monkeypatch.setattr(run.apps, "example_app", lambda: "example")
    monkeypatch.setattr(run.apps, "large_app", lambda: "large")
    monkeypatch.setattr(run.apps, "rails_app", lambda: "rails")
    seen: list[tuple[str, set[str]]] = []

    def run_app(bench: str, cases: set[str], _opts: object) -> list[object]:
        seen.append((bench, cases))
        return []

    monkeypatch.setattr(run, "run_app", run_app)
    args = run.parse_args(argv)
    wanted = {c.strip().upper() for c in args.cases.split(",") if c.strip()}
    opts = run.cases.Options(1, 1, cold_runs=1, quick=False)
    run._run_engine(args, wanted, opts, opts)
    return seen


def test_fresh_cases_run_on_the_apps_the_issue_names(
    bench_modules: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    three = {"P8", "P5-BYTES", "P2-ONESHOT"}
    assert _routes(["--cases", "P8,P5-BYTES,P2-ONESHOT"], monkeypatch) == [("example", three)]
    # P4-FRESH is the large app's (its gem set) whatever --large says
    assert _routes(["--cases", "P8,P4-FRESH"], monkeypatch) == [
        ("example", {"P8"}),
        ("large", {"P4-FRESH"}),
    ]
    routes = dict(_routes(["--large"], monkeypatch))
    assert routes["example"] == {"P1", "P2", "P3", "P4", "P5", "P6", "P7"} | three
    assert routes["large"] == {"P1", "P2", "P3", "P4", "P5", "P6", "P7"} | three | {"P4-FRESH"}


def test_unknown_case_is_refused_and_fresh_cases_are_known() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run"), "--cases", "P8,P5-BYTES,P2-ONESHOT,P4-FRESH,P99"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("unknown case(s) P99"), proc.stderr


def test_a_failed_check_fails_the_row_whatever_its_ratio(bench_modules: None) -> None:
    from fresh_cases import FreshRow

    row = FreshRow("P8", "example", "1s", "20s", 0.05, "≤ 0.1", "no daemon: FAILED")
    assert row.verdict == "pass"
    row.failed = True
    assert row.verdict == "FAIL"
    row.ratio = None
    assert row.verdict == "skip"


_EXAMPLE = types.SimpleNamespace(label="example")


class _FakeBench:
    """What p4_fresh asks of a BenchApp, with imgbuild's output made up per side."""

    label = "large"

    def __init__(self, cold_output: str) -> None:
        self.extras = ["benchextra_a", "benchextra_b"]
        self.cold_output = cold_output
        self.gems: list[str] = []
        self.envs: list[dict[str, str]] = []
        self.restored = 0
        self.last_output = ""

    def add_gem(self, gem: str) -> None:
        self.gems.append(gem)

    def restore_gems(self) -> None:
        self.restored += 1

    def imgbuild(self, *args: str, extra_env: dict[str, str]) -> tuple[float, object]:
        assert args == ("base",)
        self.envs.append(dict(extra_env))
        seeded = extra_env.get("IMGBUILD_GEM_SEED") != "off"
        self.last_output = (
            "imgbuild: base: gems seeded from the previous base (ref, bundle k)\n"
            "[base] #9 0.3 bundle seed: 47 gem(s) from the previous base image\n"
            "[base] #9 1.0 Installing benchextra_a 1.0.0 with native extensions\n"
            if seeded
            else self.cold_output
        )
        doc = {"layers": [{"name": "ruby", "built": False}, {"name": "base", "built": True}]}
        return (2.0 if seeded else 40.0), doc


_COLD = (
    "imgbuild: base: gems not seeded: IMGBUILD_GEM_SEED=off\n"
    # BuildKit's plain progress prints the RUN itself, the seed's echo with `$n` in it.
    '[base] #9 [gems 4/5] RUN set -e; echo "bundle seed: $n gem(s) from the previous base image"\n'
) + "".join(f"[base] #9 {i}.0 Installing ext{i} 1.0.0 with native extensions\n" for i in range(12))


def _p4_fresh(bench: _FakeBench, monkeypatch: pytest.MonkeyPatch, runs: int = 2) -> Any:
    import contextlib

    import cases
    import fresh_cases

    networks: list[bool] = []

    @contextlib.contextmanager
    def machine(_bench: object, *, network: bool = False) -> Iterator[dict[str, str]]:
        networks.append(network)
        yield {"DOCKER_HOST": "unix:///fresh.sock"}

    monkeypatch.setattr(fresh_cases, "fresh_machine", machine)
    monkeypatch.setattr(fresh_cases, "settle", lambda: None)
    row = fresh_cases.p4_fresh(bench, cases.Options(1, 1, cold_runs=runs, quick=False))
    assert networks == [True] * 2 * runs  # every side on a fresh machine that reaches Debian
    return row


def test_p4_fresh_row_on_a_fake_app(bench_modules: None, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _FakeBench(_COLD)
    row = _p4_fresh(bench, monkeypatch)
    assert bench.gems == ["benchextra_a", "benchextra_a", "benchextra_b", "benchextra_b"]
    assert [e.get("IMGBUILD_GEM_SEED") for e in bench.envs] == [None, "off", None, "off"]
    assert bench.restored == 1
    assert row.ratio == pytest.approx(2.0 / 40.0)
    assert row.verdict == "pass"
    note = row.note
    assert "seeded 1/1, cold 12/12" in note, note
    assert "in 2/2 seeded and 0/2 cold runs" in note, note
    assert "gems seeded from the previous base" in note
    assert "gems not seeded: IMGBUILD_GEM_SEED=off" in note


def test_p4_fresh_fails_when_the_cold_peer_was_seeded(
    bench_modules: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = _p4_fresh(_FakeBench(_COLD + "[base] #9 bundle seed: 47 gem(s)\n"), monkeypatch, runs=1)
    assert row.verdict == "FAIL", row.note


def test_p5_bytes_holds_the_push_to_layer_manifest_and_a_config_2_kb_over_the_base(
    bench_modules: None,
) -> None:
    from collections import Counter

    from fresh_cases import CONFIG_SLACK, _Bytes, _p5_row

    paths = Counter({"native": 2})
    # The allowance: layer 1000 + manifest 300 + the base's config 480 + the 2 kB slack.
    allowance = 1000 + 300 + 480 + CONFIG_SLACK
    exact = _Bytes(stored=allowance, layer=1000, metadata=300 + 500, config=500,
                   base_config=480)  # fmt: skip
    row = _p5_row(_EXAMPLE, [exact, exact], paths)
    assert (row.ratio, row.verdict) == (1.0, "pass")
    # An inputs artifact that does not fit in what the config leaves of the slack.
    extra = _Bytes(stored=1000 + 800 + CONFIG_SLACK, layer=1000, metadata=800, config=500,
                   base_config=480, inputs=CONFIG_SLACK)  # fmt: skip
    row = _p5_row(_EXAMPLE, [exact, extra], paths)
    assert row.ratio == pytest.approx((1800 + CONFIG_SLACK) / allowance)
    assert row.verdict == "FAIL"
    assert f"inputs artifact {CONFIG_SLACK:,} B" in row.note, row.note
    big = _Bytes(stored=1000 + 300 + 3000, layer=1000, metadata=300 + 3000, config=3000,
                 base_config=3000 - CONFIG_SLACK - 1)  # fmt: skip
    row = _p5_row(_EXAMPLE, [big], paths)
    assert row.verdict == "FAIL", row.note  # the config is more than 2 kB larger than the base's


class _Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "host": self.headers["Host"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_http_proxy_relays_a_get(tmp_path: Path) -> None:
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    sock = tmp_path / "proxy.sock"
    proxy = subprocess.Popen([sys.executable, str(BENCH / "forward.py"), "http-proxy", str(sock)])
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        port = origin.server_address[1]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(sock))
            client.sendall(
                f"GET http://127.0.0.1:{port}/debian/Release?x=1 HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nProxy-Connection: keep-alive\r\n\r\n".encode()
            )
            reply = b""
            while data := client.recv(65536):
                reply += data
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        origin.shutdown()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")), head
    assert json.loads(body) == {"path": "/debian/Release?x=1", "host": f"127.0.0.1:{port}"}


_NETWORK_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN rm -f /etc/apt/sources.list.d/* \\
 && echo "deb http://deb.debian.org/debian bookworm-updates main" > /etc/apt/sources.list \\
 && apt-get update
"""


@pytest.mark.docker
@pytest.mark.slow
def test_fresh_daemon_with_network_reaches_debian_through_the_proxy(
    dev: Any, tmp_path: Path, bench_modules: None
) -> None:
    """P4-FRESH's base builds run apt-get on a fresh daemon: its own bridge (BuildKit runs no RUN
    step without one) and forward.py's HTTP proxy named in the DOCKER_CONFIG it hands out."""
    import os

    from freshd import fresh_daemon

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(_NETWORK_DOCKERFILE)
    base_image = dev.base_image
    with fresh_daemon(tmp_path, network=True) as env:
        assert set(env) == {"DOCKER_HOST", "DOCKER_CONFIG"}
        proc = subprocess.run(
            ["docker", "buildx", "build", "--progress=plain", "--build-arg",
             f"BASE_IMAGE={base_image}", str(tmp_path / "ctx")],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        sock = env["DOCKER_HOST"].removeprefix("unix://")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bookworm-updates/main amd64 Packages" in proc.stderr + proc.stdout
    assert not Path(sock).exists()  # stopped and cleaned up after


@pytest.mark.docker
@pytest.mark.slow
def test_fresh_machine_rows_have_numbers(dev: object, tmp_path: Path) -> None:
    """P2-ONESHOT, P8 (and its run with no daemon reachable) and P5-BYTES end to end, one pair."""
    out_json = tmp_path / "rows.json"
    argv = [sys.executable, str(BENCH / "run"), "--cases", "P2-ONESHOT,P8,P5-BYTES"]
    argv += ["--pairs", "1", "--engines", "system", "--json", str(out_json)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=3600, check=False
    )  # runs queue on the bench lock
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| P")]
    assert [line.split(" ")[1] for line in table] == ["P2-ONESHOT", "P8", "P5-BYTES"], table
    rows = {row["case"].split()[0]: row for row in json.loads(out_json.read_text())["rows"]}
    assert set(rows) == {"P2-ONESHOT", "P8", "P5-BYTES"}
    for row in rows.values():
        assert row["app"] == "example"
        assert re.search(r"\d", row["imgbuild"]), row
        assert re.search(r"\d", row["peer"]), row
        assert row["ratio"] > 0, row
        assert row["result"] in ("pass", "FAIL"), row
        assert "imgbuild's app path " in row["note"], row  # the path each run took is reported
    targets = {case: row["target"] for case, row in rows.items()}
    assert targets == {"P2-ONESHOT": "≤ 1.0", "P8": "≤ 0.1", "P5-BYTES": "≤ 1.0"}
    assert re.search(r"no daemon: (ok|FAILED)", rows["P8"]["note"]), rows["P8"]["note"]
    assert "raw pull+build+push" in rows["P8"]["peer"]
    assert re.search(r"new layer [\d,]+ B, manifest [\d,]+ B, config", rows["P5-BYTES"]["note"])
