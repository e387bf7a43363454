"""Issue 17's cases: the app assembled straight into the registry, and base's gem install seeded
from the previous base image. Each returns table rows (cases.Row); run.py runs them only when
named in --cases (a fresh dockerd per sample: minutes).

  P8          one source file changed, `imgbuild app --push` on a fresh machine vs raw docker on
              one (`docker buildx build` of the app Dockerfile FROM the base in the registry, which
              it must pull, then `docker push` to its own repository); plus one imgbuild run with
              DOCKER_HOST naming a socket where no daemon listens, which must succeed.
  P5-BYTES    registry storage growth of P8's imgbuild pushes (worst push) against the issue's
              allowance: the new layer + the manifest + a config at most 2 kB larger than the
              base's (so ≤ base config + 2 kB of metadata: the config itself and the inputs
              artifact beside it); also the new config alone ≤ the base's config + 2 kB.
  P2-ONESHOT  the warm machine (dev daemon, the bench's cache dir, no `imgbuild server`): one
              source file changed, `imgbuild app --push` vs raw build + push of the app layer.
  P4-FRESH    large app, one gem added, `imgbuild base` on a fresh machine: seeded from the
              previous base image vs IMGBUILD_GEM_SEED=off (a cold gem install).

A fresh machine is a new empty dockerd (freshd.fresh_daemon) and new empty imgbuild cache,
docker and buildx config directories, for every sample of either side. The registry holds the
previous chain before every sample: each imgbuild sample edits the source anew (a new content
key), raw docker pushes to its own repository, P4-FRESH pushes nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps import BenchApp
from cases import Options, Row, settle
from freshd import fresh_daemon
from tools import (
    DOCKER,
    VENV,
    BenchError,
    Samples,
    blob_sizes,
    manifest,
    manifest_bytes,
    metadata_bytes,
    run,
)
from tools import stored_growth as stored_since

CASES = ("P8", "P5-BYTES", "P2-ONESHOT", "P4-FRESH")
LARGE_ONLY = frozenset({"P4-FRESH"})  # 48 gems, 12 with C extensions: the example's 3 say nothing
ASSEMBLED = "app: assembled in the registry"  # imgbuild's line for the native path
CONFIG_SLACK = 2048  # P5-BYTES: the app's config may be this much larger than the base's


@dataclass
class FreshRow(Row):
    """A row with checks besides its ratio: any failed check makes it FAIL (the note says which)."""

    failed: bool = False

    @property
    def verdict(self) -> str:
        return "FAIL" if self.failed and self.ratio is not None else super().verdict


def run_cases(bench: BenchApp, wanted: set[str], opts: Options) -> list[Row]:
    """The wanted issue-17 cases on one app, after run.run_app's setup (chain pushed, raw
    staged)."""
    rows: list[Row] = []
    if "P2-ONESHOT" in wanted:
        print(f"… {bench.label}: P2-ONESHOT", flush=True)
        rows.append(p2_oneshot(bench, opts))
    if wanted & {"P8", "P5-BYTES"}:
        print(f"… {bench.label}: {', '.join(sorted(wanted & {'P8', 'P5-BYTES'}))}", flush=True)
        rows += p8(bench, opts, wanted)
    if "P4-FRESH" in wanted:
        print(f"… {bench.label}: P4-FRESH", flush=True)
        rows.append(p4_fresh(bench, opts))
    return rows


# ---- shared -----------------------------------------------------------------------------------


def _empty_dirs(tmp: str) -> dict[str, str]:
    """A new machine's imgbuild cache, docker and buildx config directories, under tmp."""
    (Path(tmp) / "docker-config").mkdir()
    return {
        "IMGBUILD_CACHE_DIR": f"{tmp}/imgbuild-cache",
        "DOCKER_CONFIG": f"{tmp}/docker-config",
        "BUILDX_CONFIG": f"{tmp}/buildx",
    }


@contextlib.contextmanager
def fresh_machine(bench: BenchApp, *, network: bool = False) -> Iterator[dict[str, str]]:
    """Env additions for one side of one sample: a new empty dockerd (with network=True one whose
    RUN steps reach Debian's archive), and new empty imgbuild cache, docker and buildx config
    directories (so neither BuildKit's transfer state nor engine.json survives a sample)."""
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        base = _empty_dirs(tmp)
        with fresh_daemon(bench.workdir, network=network) as daemon:
            yield {**base, **daemon}  # network=True: the daemon's DOCKER_CONFIG names its proxy


def _s(samples: Samples) -> str:
    return f"{samples.median:.2f}s{samples.spread()}"


def _each(samples: Samples) -> str:
    return "/".join(f"{v:.2f}" for v in samples.values)


def _alternate(
    pairs: int, side_a: Callable[[], float], side_b: Callable[[], float] | None
) -> tuple[Samples, Samples]:
    """A B A B … (cases._alternate, whose sides settle themselves here: the sync must come after
    the fresh machine starts); side_b None: A only."""
    a, b = Samples(), Samples()
    for _ in range(pairs):
        a.add(side_a())
        if side_b is not None:
            b.add(side_b())
    return a, b


def _app_layer(doc: dict[str, Any]) -> dict[str, Any]:
    for layer in doc.get("layers") or ():
        if layer["name"] == "app":
            return dict(layer)
    raise BenchError("imgbuild's --json has no app layer")


def _path(doc: dict[str, Any], output: str) -> str:
    """How imgbuild made the app: "native" or "buildkit: <reason>" (its --json and its log)."""
    app = _app_layer(doc)
    path = app.get("path") or "not reported"
    if path == "native" and ASSEMBLED not in output:
        path += f' (without "{ASSEMBLED}")'
    if app.get("path_reason"):
        path += f": {app['path_reason']}"
    return str(path)


def _paths(paths: Counter[str]) -> str:
    total = sum(paths.values())
    return "imgbuild's app path " + "; ".join(f"{p} {n}/{total}" for p, n in paths.items())


def _raw_app(bench: BenchApp, env: dict[str, str]) -> float:
    """Raw docker's app layer on the machine `env` names: the staged app Dockerfile on the base
    image in the registry (assets first, as BenchApp.raw_app), pushed to bench-raw-*:fresh."""
    env = {**bench.peer_env, **env}
    ref, seconds, overrides = bench.raw_ref("app", "fresh"), 0.0, None
    if bench.specs()["app"].assets is not None:
        assets_ref = bench.raw_ref("assets", "fresh")
        seconds, _ = run(bench.raw_assets_argv(assets_ref), env=env)
        overrides = {"BASE_IMAGE": assets_ref}
    build, _ = run(bench.raw_build_argv("app", ref, overrides=overrides), env=env)
    push, _ = run([DOCKER, "push", ref], env=env)
    return seconds + build + push


# ---- P2-ONESHOT: warm machine, one-shot process -------------------------------------------------


def p2_oneshot(bench: BenchApp, opts: Options) -> Row:
    """As P2, but imgbuild runs as CI runs it: one process, no server (BenchApp's env has
    IMGBUILD_SERVER=off unless a case starts one)."""
    paths: Counter[str] = Counter()

    def imgbuild() -> float:
        bench.edit_source()
        settle()
        seconds, doc = bench.imgbuild("app", "--push")
        paths[_path(doc, bench.last_output)] += 1
        return seconds

    def raw() -> float:
        bench.edit_source()
        settle()
        return bench.raw_app()

    bench.edit_source()  # unmeasured: both sides start from an edit already built and pushed
    bench.imgbuild("app", "--push")
    bench.edit_source()
    bench.raw_app()
    try:
        a, b = _alternate(opts.pairs, imgbuild, raw)
    finally:
        bench.restore_source()
    note = f"{_paths(paths)}; seconds imgbuild {_each(a)}, raw {_each(b)}"
    return Row("P2-ONESHOT one file changed, one-shot", bench.label, _s(a) + " one-shot",
               _s(b) + " raw app layer", a.median / b.median, "≤ 1.0", note)  # fmt: skip


# ---- P8 (+ P5-BYTES): fresh machine, one source file changed ---------------------------------


@dataclass
class _Bytes:
    """One native push's registry bytes (P5-BYTES)."""

    stored: int  # new blobs linked into the app repository
    layer: int  # the app's layers that neither the base nor the previous app image has
    metadata: int  # manifest (+ index, attestation) and config: tools.metadata_bytes
    config: int  # the app image's config blob
    base_config: int
    inputs: int = 0  # the `<tag>.inputs` artifact beside it (chain.inputsref): manifest + blobs

    @property
    def least(self) -> int:
        """What the push must store: the new layer, the manifest and the config."""
        return self.layer + self.metadata

    @property
    def allowance(self) -> int:
        """The issue's bound: the new layer + the manifest + a config at most CONFIG_SLACK
        larger than the base's. Whatever else the push stores (the inputs artifact) must fit
        in what the config leaves of that slack."""
        return self.layer + (self.metadata - self.config) + self.base_config + CONFIG_SLACK

    @property
    def config_ok(self) -> bool:
        return self.config <= self.base_config + CONFIG_SLACK

    @property
    def ok(self) -> bool:
        return self.stored <= self.allowance and self.config_ok


def _bytes(stored: int, app: str, base: str, previous: str) -> _Bytes:
    body = manifest(app)
    old = {layer["digest"] for layer in manifest(base)["layers"]}
    if previous != app:
        old |= {layer["digest"] for layer in manifest(previous)["layers"]}
    layer = sum(int(x["size"]) for x in body["layers"] if x["digest"] not in old)
    base_config = int(manifest(base)["config"]["size"])
    config = int(body["config"]["size"])
    return _Bytes(stored, layer, metadata_bytes(app), config, base_config, _inputs_bytes(app))


def _inputs_bytes(app: str) -> int:
    """Bytes of the inputs artifact imgbuild tags `<content tag>.inputs` in the app's repository
    (chain.inputsref): stored by the same push, so in `stored`; 0 when there is none."""
    return manifest_bytes(f"{app}.inputs")


def p8(bench: BenchApp, opts: Options, wanted: set[str]) -> list[Row]:
    paths: Counter[str] = Counter()
    pushes: list[_Bytes] = []
    _, doc = bench.imgbuild("app", "--push")  # the chain in the registry (a no-op after setup)
    previous = [_app_layer(doc)["image"]]

    def imgbuild() -> float:
        bench.edit_source()
        with fresh_machine(bench) as env:
            before = blob_sizes()
            settle()
            seconds, doc = bench.imgbuild("app", "--push", extra_env=env)
        paths[_path(doc, bench.last_output)] += 1
        layers = {layer["name"]: layer["image"] for layer in doc["layers"]}
        grown = stored_since(before, f"{bench.name}-app")
        pushes.append(_bytes(grown, layers["app"], layers["base"], previous[-1]))
        previous.append(layers["app"])
        return seconds

    def raw() -> float:
        bench.edit_source()
        with fresh_machine(bench) as env:
            settle()
            return _raw_app(bench, env)

    try:
        a, b = _alternate(opts.pairs, imgbuild, raw if "P8" in wanted else None)
        no_daemon = _no_daemon(bench) if "P8" in wanted else ""
    finally:
        bench.restore_source()
    rows: list[Row] = []
    if "P8" in wanted:
        note = f"{_paths(paths)}; {no_daemon}; seconds imgbuild {_each(a)}, raw {_each(b)}"
        rows.append(
            FreshRow("P8 fresh machine: one file changed → pushed", bench.label, _s(a),
                     _s(b) + " raw pull+build+push", a.median / b.median, "≤ 0.1", note,
                     failed=not no_daemon.startswith("no daemon: ok"))
        )  # fmt: skip
    if "P5-BYTES" in wanted:
        rows.append(_p5_row(bench, pushes, paths))
    return rows


def _p5_row(bench: BenchApp, pushes: list[_Bytes], paths: Counter[str]) -> Row:
    """stored / (new layer + manifest + the base's config + CONFIG_SLACK), worst push; a config
    more than CONFIG_SLACK larger than the base's fails the row whatever the ratio."""
    worst = max(pushes, key=lambda p: p.stored / p.allowance)
    median = sorted(pushes, key=lambda p: p.stored)[len(pushes) // 2]
    note = (
        f"worst push: {worst.stored:,} B stored; new layer {worst.layer:,} B, manifest "
        f"{worst.metadata - worst.config:,} B, config {worst.config:,} B = base's "
        f"{worst.base_config:,} B {worst.config - worst.base_config:+,} B, inputs artifact "
        f"{worst.inputs:,} B; stored - (layer+manifest+config) = "
        f"{worst.stored - worst.least:+,} B of the {CONFIG_SLACK:,} B slack; config ≤ base's + "
        f"{CONFIG_SLACK} B in {sum(p.config_ok for p in pushes)}/{len(pushes)} pushes, "
        f"stored ≤ allowance in {sum(p.stored <= p.allowance for p in pushes)}/{len(pushes)}; "
        f"{_paths(paths)}"
    )
    return FreshRow("P5-BYTES native push: stored vs layer+manifest+config(≤ base's + 2 kB)",
                    bench.label, f"{median.stored / 1e3:,.1f} kB stored",
                    f"{median.allowance / 1e3:,.1f} kB allowance",
                    worst.stored / worst.allowance, "≤ 1.0", note,
                    failed=not all(p.config_ok for p in pushes))  # fmt: skip


def _no_daemon(bench: BenchApp) -> str:
    """One more P8 imgbuild run, with DOCKER_HOST naming a socket nothing listens on (and empty
    cache and config directories): "no daemon: ok (Xs)" or what went wrong."""
    bench.edit_source()
    with tempfile.TemporaryDirectory(prefix="bench-nodaemon-") as tmp:
        env = {**bench.env, "DOCKER_HOST": f"unix://{tmp}/no-daemon.sock", **_empty_dirs(tmp)}
        argv = [str(VENV / "bin" / "imgbuild"), "app", "--push", "--json"]
        seconds, out = run(argv, env=env, cwd=bench.app, check=False)
    start = out.rfind("\n{\n")
    try:
        app = _app_layer(json.loads(out[start + 1 :])) if start >= 0 else {}
    except (ValueError, BenchError, TypeError, KeyError):
        app = {}
    if app.get("pushed"):
        return f"no daemon: ok ({seconds:.2f}s, path {app.get('path') or 'not reported'})"
    lines = [line.strip() for line in out.splitlines() if line.strip() and line[0] not in "{}"]
    return f"no daemon: FAILED after {seconds:.2f}s ({lines[-1] if lines else 'no output'})"


# ---- P4-FRESH: one gem added, base on a fresh machine, seeded vs cold -------------------------

_COMPILED = re.compile(r"Installing (\S+) \S+ with native extensions")
# The line the gem stage prints when it copied a seed in, with its count: BuildKit's progress
# also prints the RUN's own text, where the count is still `$n`.
_SEEDED = re.compile(r"bundle seed: \d+ gem\(s\)")
_SEED_LINE = re.compile(r"base: gems (?:seeded from|not seeded)[^\n]*")


def p4_fresh(bench: BenchApp, opts: Options) -> Row:
    """`imgbuild base` after adding one vendored gem, each side on a fresh machine whose RUN steps
    reach Debian's archive (the gem stage's apt-get): seeded (the default) vs IMGBUILD_GEM_SEED=off,
    the same build with an empty gem cache (the cold peer). Nothing is pushed: the registry holds
    the same chain before every sample. --cold-runs pairs (minutes each). A peer that was seeded
    all the same makes the row FAIL: its ratio would compare two seeded builds."""
    case, target = "P4-FRESH one gem added → base, fresh machine", "≤ 0.2"
    if not bench.extras:
        return Row(case, bench.label, "no extra gems", "", None, target)
    if opts.quick:
        return Row(case, bench.label, "skipped (--quick)", "", None, target)
    compiled: dict[bool, list[int]] = {True: [], False: []}
    seeded: dict[bool, int] = {True: 0, False: 0}
    said: dict[bool, str] = {}

    def side(gem: str, *, seed: bool) -> float:
        bench.add_gem(gem)  # a new comment each time: a new base key for every sample
        with fresh_machine(bench, network=True) as env:
            if not seed:
                env["IMGBUILD_GEM_SEED"] = "off"
            settle()
            seconds, doc = bench.imgbuild("base", extra_env=env)
        base = next(layer for layer in doc["layers"] if layer["name"] == "base")
        if not base["built"]:
            raise BenchError(f"P4-FRESH: imgbuild did not build base after adding {gem}")
        out = bench.last_output
        compiled[seed].append(len(set(_COMPILED.findall(out))))
        seeded[seed] += bool(_SEEDED.search(out))
        said[seed] = next(iter(_SEED_LINE.findall(out)), "no seed line in imgbuild's log")
        return seconds

    a, b = Samples(), Samples()
    try:
        for i in range(max(opts.cold_runs, 1)):
            gem = bench.extras[i % len(bench.extras)]
            a.add(side(gem, seed=True))
            b.add(side(gem, seed=False))
    finally:
        bench.restore_gems()
    n = len(a.values)
    note = (
        f"pairs: {n}; gems compiled with native extensions: seeded "
        f"{'/'.join(map(str, compiled[True]))}, cold {'/'.join(map(str, compiled[False]))}; "
        f'bundle seeded ("bundle seed:" in the build) in {seeded[True]}/{n} seeded and '
        f"{seeded[False]}/{n} cold runs; imgbuild said {said[True]!r} (seeded), "
        f"{said[False]!r} (IMGBUILD_GEM_SEED=off); seconds seeded {_each(a)}, cold {_each(b)}"
    )
    return FreshRow(case, bench.label, _s(a) + " seeded", _s(b) + " IMGBUILD_GEM_SEED=off",
                    a.median / b.median, target, note, failed=seeded[False] > 0)  # fmt: skip
