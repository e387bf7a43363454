"""imgbuild vs raw docker vs a naive Dockerfile, side by side in one run; prints one table.

    bench/run                       # P1-P7, example app, 5 pairs
    bench/run --large --pairs 3     # also the generated 10k-file / 200 MB app with a real gem set
                                    # (and issue 17's cases below: the full run)
    bench/run --quick               # smoke run (make test): 1 pair, example app, no cold builds
    bench/run --cases P1,P2
    bench/run --engines engine26    # one engine only (default: the system engine, then engine 26)
    bench/run --rails               # also R1 on examples/rails (edit -> pushed; not in --quick)
    bench/run --cases R1            # only the Rails app's case

Issue 17's cases (bench/fresh_cases.py) start a fresh dockerd per sample (minutes), so they are
not in the default run nor in --quick; they join the full run (--large or --large-only without
--cases) and run whenever named in --cases:

    bench/run --large                       # P1-P7 and issue 17's four, example and large app
    bench/run --cases P8,P5-BYTES --large   # fresh machine: one file changed -> pushed, and the
                                            # registry bytes that push stored (example, large)
    bench/run --cases P2-ONESHOT            # warm machine, one-shot imgbuild (no server) vs raw
    bench/run --cases P4-FRESH --cold-runs 2  # large app, fresh machine: gem added, seeded base
                                              # vs IMGBUILD_GEM_SEED=off (--cold-runs pairs)
    bench/run --cases P9-JOBS --engines system  # issue 18: two apps of one config, both bases
                                                # and apps stale: --jobs 2 vs --jobs 1

  P8          `imgbuild app --push` on a fresh machine (an empty dockerd, empty cache and config
              dirs, the previous chain in the registry) vs raw docker on one (build FROM the base
              in the registry, which it pulls, then push); plus one imgbuild run with DOCKER_HOST
              naming a socket nothing listens on, which must succeed. Target <= 0.1.
  P5-BYTES    registry storage growth of P8's imgbuild pushes / (new layer + manifest + the
              base's config + 2 kB), worst push; the app's config alone must also be <= the
              base's config + 2 kB. Target <= 1.0.
  P2-ONESHOT  P2 with imgbuild as one process, no `imgbuild server`. Target <= 1.0.
  P4-FRESH    one vendored gem added, `imgbuild base` on a fresh machine (whose RUN steps reach
              Debian's archive through a proxy): seeded from the previous base image vs the
              same with IMGBUILD_GEM_SEED=off; on the large app whatever --large says (its 12
              C-extension gems; the example's are too few to say anything). Target <= 0.2.
  P9-JOBS     two apps (bench/jobs_case.py) on one Ruby, a Gemfile edit in each: `imgbuild
              app --push --jobs 2` vs `--jobs 1` (only when named). Target <= 1.0.
IMGBUILD_NATIVE=off in the environment measures the BuildKit path instead of the registry one.

Sides alternate (A B A B …) because the machine is shared and noisy; the table shows medians
with min-max. Details of every command go to ~/.cache/imgbuild-dev/bench/last-run.log.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import apps
import cases
import fresh_cases
import jobs_case
import tools
from tools import BENCH_HOME, ENGINES, LOG, BenchError, machine

ALL_CASES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7")  # the default; on example (and large)
RAILS_CASES = ("R1",)  # on examples/rails only: with --rails or named in --cases
FRESH_CASES = fresh_cases.CASES  # issue 17's (minutes): the full run (--large) or named
JOBS_CASES = ("P9-JOBS",)  # issue 18's, on a monorepo of two apps: only when named


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 pair, example only")
    parser.add_argument(
        "--cases",
        help="e.g. P1,P2 (default P1-P7; with --large or --large-only also "
        + ",".join(FRESH_CASES)
        + ")",
    )
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs per case (default 5)")
    parser.add_argument(
        "--cold-runs",
        type=int,
        default=1,
        help="cold builds per case (P3, P4 peers; P4-FRESH pairs; minutes each)",
    )
    parser.add_argument(
        "--naive-runs", type=int, help="naive rebuilds in P2 (default: one per pair)"
    )
    parser.add_argument(
        "--large-pairs", type=int, default=3, help="pairs on the large app (default 3)"
    )
    parser.add_argument(
        "--large-naive-runs", type=int, default=2, help="naive rebuilds on the large app"
    )
    parser.add_argument("--large", action="store_true", help="also the generated large app")
    parser.add_argument("--large-only", action="store_true", help="only the generated large app")
    parser.add_argument(
        "--rails",
        action="store_true",
        help="also R1 on examples/rails: a Ruby-only and a stylesheet edit -> pushed",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="engines to measure on, one table each (default system,engine26)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.large, args.large_only = 1, False, False
    if args.cases is None:  # the default selection; the full run adds issue 17's slow cases
        full = args.large or args.large_only
        args.cases = ",".join(ALL_CASES + (FRESH_CASES if full else ()))
    return args


def run_app(bench: apps.BenchApp, wanted: set[str], opts: cases.Options) -> list[cases.Row]:
    print(f"… {bench.label}: setting up (warm builds and pushes, not measured)", flush=True)
    # --quick (the smoke run in make test) skips the naive peer: building it compiles Ruby once
    # more, minutes on a cold CI machine.
    apps.setup(bench, naive=bool(wanted & {"P2", "P6"}) and not opts.quick)
    rows: list[cases.Row] = []
    steps: tuple[tuple[str, Callable[[], list[cases.Row]]], ...] = (
        ("P7", lambda: cases.p7(bench, opts)),
        ("P1", lambda: cases.p1(bench, opts)),
        ("P2P5P6", lambda: cases.p2(bench, opts, wanted)),
        ("P4", lambda: cases.p4(bench, opts)),
        ("P3", lambda: cases.p3(bench, opts)),
        ("R1", lambda: cases.r1(bench, opts)),
    )
    for ids, step in steps:
        if any(ids[i : i + 2] in wanted for i in range(0, len(ids), 2)):
            print(f"… {bench.label}: {ids}", flush=True)
            rows += step()
    rows += fresh_cases.run_cases(bench, wanted & set(FRESH_CASES), opts)
    _, doc = bench.imgbuild("app", "--push")  # back to the pristine source: a no-op
    keep = {layer["image"] for layer in doc["layers"]}
    assets = bench.specs()["app"].assets
    if assets is not None:  # the pristine source's assets image: the next run starts on it
        keep.add(assets.image)
    cases.cleanup_images(bench, keep=keep)
    return rows


def render(
    rows: list[cases.Row],
    info: dict[str, str],
    opts: cases.Options,
    large: cases.Options | None = None,
) -> str:
    header = ("case", "app", "imgbuild", "peer", "ratio", "target", "result")
    table = [header] + [
        (r.case, r.app, r.imgbuild, r.peer, "-" if r.ratio is None else f"{r.ratio:.3f}",
         r.target, r.verdict)
        for r in rows
    ]  # fmt: skip
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cold = 0 if opts.quick else opts.cold_runs
    peers = (
        f", naive peer {min(opts.naive_runs, opts.pairs)} run(s), cold peers {cold} run(s)"
        if any(not r.case.startswith(RAILS_CASES) for r in rows)
        else ""  # R1 alone has neither
    )
    lines = [
        "machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        f"method: medians of {opts.pairs} alternating pairs (min–max){peers}"
        + (
            f"; large app: {large.pairs} pairs, naive {min(large.naive_runs, large.pairs)}"
            if large
            else ""
        )
        + f"; {when}",
        "",
        "| " + " | ".join(table[0]) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    notes = [f"- {r.case} ({r.app}): {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = {c.strip().upper() for c in args.cases.split(",") if c.strip()}
    if args.rails:
        wanted |= set(RAILS_CASES)
    unknown = wanted - set(ALL_CASES) - set(RAILS_CASES) - set(FRESH_CASES) - set(JOBS_CASES)
    if unknown:
        print(f"bench/run: unknown case(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    BENCH_HOME.mkdir(parents=True, exist_ok=True)
    with (BENCH_HOME / ".lock").open("w") as lock:
        # One run at a time: runs share the bench apps, images and repositories (and a second
        # run, e.g. `make test` started by someone else, would also skew the timings).
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("… waiting for another bench/run to finish", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _locked_main(args, wanted)


def _locked_main(args: argparse.Namespace, wanted: set[str]) -> int:
    pairs = max(args.pairs, 1)
    naive_runs = pairs if args.naive_runs is None else args.naive_runs
    opts = cases.Options(pairs, naive_runs, cold_runs=args.cold_runs, quick=args.quick)
    large = cases.Options(
        args.large_pairs, args.large_naive_runs, cold_runs=args.cold_runs, quick=args.quick
    )
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown or not engines:
        print(f"bench/run: --engines takes {', '.join(ENGINES)}", file=sys.stderr)
        return 2
    LOG.write_text("", encoding="utf-8")
    bytecode = _compile_bytecode()
    tables, documents = [], []
    try:
        for name in engines:
            tools.use_engine(tools.engine_choice(name))
            info = {**machine(), "bytecode": bytecode, "engine-name": name}
            rows = _run_engine(args, wanted, opts, large)
            tables.append(
                render(rows, info, opts, large if args.large or args.large_only else None)
            )
            documents.append((info, rows))
    except BenchError as exc:
        print(f"bench/run: {exc}\n(see {LOG})", file=sys.stderr)
        return 1
    text = "\n\n".join(tables)
    print(text)
    (BENCH_HOME / "last-table.md").write_text(text + "\n", encoding="utf-8")
    if args.json:
        data = [
            {**r.__dict__, "result": r.verdict, "engine": info["engine-name"]}
            for info, rows in documents
            for r in rows
        ]
        machines = {info["engine-name"]: info for info, _ in documents}
        document = {"machine": documents[0][0], "machines": machines, "rows": data}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def _run_engine(
    args: argparse.Namespace, wanted: set[str], opts: cases.Options, large: cases.Options
) -> list[cases.Row]:
    """Every wanted case on the engine `tools.use_engine` chose, with that engine's own apps."""
    classic = wanted & set(ALL_CASES)
    fresh = wanted & set(FRESH_CASES)
    either = classic | (fresh - fresh_cases.LARGE_ONLY)  # on the example, and large if asked
    on_large = fresh & fresh_cases.LARGE_ONLY  # P4-FRESH: the large app's gem set or nothing
    if args.large or args.large_only:
        on_large |= either
    benches = []
    if either and not args.large_only:
        benches.append((apps.example_app, either, opts))
    if on_large:
        benches.append((apps.large_app, on_large, large))
    if wanted & set(RAILS_CASES):
        benches.append((apps.rails_app, wanted & set(RAILS_CASES), opts))
    rows: list[cases.Row] = []
    for make, app_cases, app_opts in benches:
        rows += run_app(make(), app_cases, app_opts)
    if wanted & set(JOBS_CASES):
        print("… monorepo: P9-JOBS", flush=True)
        rows += jobs_case.p9_jobs(opts)
    return rows


def _compile_bytecode() -> str:
    """Compile imgbuild's modules as `pip install` does for a user: an editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 (as some shells and CI images set it) would otherwise recompile every
    module on every run, ~0.1-0.15 s of a sub-second no-op that no installed user pays."""
    import compileall

    import buildkit

    package = Path(buildkit.__file__).parent
    ok = compileall.compile_dir(str(package), quiet=1, workers=1)
    return "precompiled" if ok else "compile failed (timings include compiling)"


if __name__ == "__main__":
    sys.exit(main())
