"""Where the time of a no-op `imgbuild app --push` goes (P1), phase by phase, in one process.

    bench/profile_noop.py APP_DIR     # with the bench env (IMGBUILD_CACHE_DIR etc.) exported

Run it in a fresh interpreter: imports are a large part of a sub-second run. The last line is the
"registry-only" floor: what a no-op costs when it only hashes the tree and asks the registry
whether the three content tags exist (no CLI framework, no Docker SDK, no docker subprocesses).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

T0 = time.perf_counter()
PHASES: list[tuple[str, float]] = []


def mark(name: str, since: float) -> float:
    now = time.perf_counter()
    PHASES.append((name, now - since))
    return now


def main() -> int:
    app = Path(sys.argv[1]).resolve()
    t = T0
    from buildkit.chain import layers
    from buildkit.config import loading as configmod
    from buildkit.engine.registry import RegistryClient, split_ref

    t = mark("import config/layers/registry", t)
    import buildkit.cli.app  # noqa: F401  (typer, click)

    t = mark("import CLI (typer/click)", t)
    from buildkit.chain import plan
    from buildkit.reports import collect, table  # noqa: F401  (rich)
    from buildkit.run import pipeline

    t = mark("import pipeline + reports (rich)", t)
    config = configmod.resolve(app / "imgbuild.yaml")
    t = mark("resolve config", t)
    cache = plan.digest_cache(config)
    cache.load()
    specs = layers.chain(config, cache)
    t = mark("hash inputs (digest cache warm)", t)
    client = RegistryClient(config.registry or "")
    for spec in specs:
        _, repo, tag = split_ref(spec.image)
        client.exists(repo, tag)
    t = mark("3 × registry HEAD manifest (the no-op never asks the daemon)", t)
    for spec in specs:
        plan.record(config, spec)
    mark("3 × state record (unchanged: not rewritten)", t)
    total = time.perf_counter() - T0
    floor = sum(
        s for n, s in PHASES if n.startswith(("import config", "resolve", "hash", "3 × registry"))
    )
    for name, seconds in PHASES:
        print(f"{seconds * 1e3:8.1f} ms  {name}")
    print(f"{total * 1e3:8.1f} ms  total in-process (plus ~20 ms interpreter start)")
    print(f"{floor * 1e3:8.1f} ms  registry-only floor (imports + config + hash + HEADs)")
    del pipeline
    return 0


if __name__ == "__main__":
    sys.exit(main())
