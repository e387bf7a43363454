"""Several apps' chains as one graph: each distinct layer image built once, independent layers
in parallel (docs/monorepo.md).

A node is one layer image (repository:tag): two apps whose Ruby has the same key and repository
share one node, so it is compiled once. A node runs the usual `pipeline.run` for the first app
that needs it, targeted at its layer, after its parent's node finished: the parent is then up to
date and the run builds only the node's own layer. Up to `jobs` nodes run at once, in threads
(the work is BuildKit subprocesses and registry I/O). A failed node fails the nodes built on
it; the others go on, and the first failure is raised after every app's outcomes are in.

Nodes of one app form a chain, so no two run at once: an app's digest cache and state records
are never written by two threads. Layers that share a repository (the apps' Ruby images) take
turns on its staging lock (run.staging), so two different Rubies in one repository build one
after the other.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TypeVar

from buildkit import log, proc
from buildkit.chain import layers
from buildkit.chain.model import LayerOutcome, LayerSpec, RunOptions
from buildkit.chain.plan import digest_cache, layers_up_to
from buildkit.config.loading import Config
from buildkit.errors import ImgbuildError

K = TypeVar("K", bound=Hashable)

#: Memory a parallel build may take (a Ruby compile with make -j, a bundle install compiling
#: native gems): the default --jobs allows one such build per this much of the machine's RAM.
MEMORY_PER_JOB = 2 * 1024**3


class DependencyFailed(ImgbuildError):
    """A node not run because a node it is built on failed; carries that failure's exit code."""

    def __init__(self, node: str, cause: BaseException) -> None:
        code = cause.exit_code if isinstance(cause, ImgbuildError) else 1
        super().__init__(f"{node}: not built: a layer it is built on failed")
        self.exit_code = code


def default_jobs() -> int:
    """What the machine can take: its CPUs, bounded by its memory (MEMORY_PER_JOB each)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    by_memory = memory // MEMORY_PER_JOB if memory else cpus or 1
    return max(1, min(cpus or 1, by_memory))


def run_graph(
    parents: Mapping[K, Sequence[K]], work: Callable[[K], None], jobs: int
) -> dict[K, BaseException]:
    """Run `work(node)` for every node after its parents succeeded, at most `jobs` at once, in
    the mapping's order when several are ready. Returns the failures (a node whose parent failed
    gets DependencyFailed and never runs). An interrupt of the calling thread (Ctrl-C,
    SIGTERM) stops the running builds' processes (proc.stop_streams) and propagates."""
    failures: dict[K, BaseException] = {}
    done: set[K] = set()
    waiting = list(parents)
    running: dict[Future[None], K] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="fleet") as pool:
        try:
            while waiting or running:
                started = _start_ready(parents, waiting, running, failures, done, pool, work, jobs)
                if not running:
                    if waiting and not started:  # nothing runs, nothing can start
                        raise ValueError(f"graph nodes whose parents are not nodes: {waiting}")
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        failures[node] = error
                    done.add(node)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) or a bug: stop the running builds
            proc.stop_streams()
            raise
        finally:
            for future in running:
                future.cancel()
    return failures


def _start_ready(
    parents: Mapping[K, Sequence[K]],
    waiting: list[K],
    running: dict[Future[None], K],
    failures: dict[K, BaseException],
    done: set[K],
    pool: ThreadPoolExecutor,
    work: Callable[[K], None],
    jobs: int,
) -> bool:
    """Fail the waiting nodes whose parent failed, start those whose parents are done (while
    fewer than `jobs` run); True when any node left the waiting list."""
    moved = False
    for node in list(waiting):
        failed = next((p for p in parents[node] if p in failures), None)
        if failed is not None:
            failures[node] = DependencyFailed(str(node), failures[failed])
            done.add(node)
        elif all(p in done for p in parents[node]) and len(running) < jobs:
            running[pool.submit(work, node)] = node
        else:
            continue
        waiting.remove(node)
        moved = True
    return moved


@dataclass
class Node:
    """One distinct layer image and the app that builds it."""

    image: str
    layer: str
    config: Config
    parent: str | None
    outcome: LayerOutcome | None = None
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class AppRun:
    """One app's share of a fleet run: its chain's outcomes (shared layers are the same
    objects in every app that uses them), the phases of the nodes it ran, its failure."""

    config: Config
    images: tuple[str, ...]
    outcomes: list[LayerOutcome]
    phases: dict[str, float]
    error: BaseException | None
    shared: frozenset[str]  # images another app of this run also uses


def graph(configs: Sequence[Config], target: str) -> tuple[dict[str, Node], list[tuple[str, ...]]]:
    """One node per distinct image of every app's chain up to target, in app order, and each
    app's chain as the images it is made of."""
    nodes: dict[str, Node] = {}
    chains = []
    for config in configs:
        parent = None
        specs = _chain(config, target)
        for spec in specs:
            nodes.setdefault(spec.image, Node(spec.image, spec.name, config, parent))
            parent = spec.image
        chains.append(tuple(spec.image for spec in specs))
    return nodes, chains


def run(configs: Sequence[Config], options: RunOptions, jobs: int) -> list[AppRun]:
    """Build every app's chain, each distinct layer once, up to `jobs` layers at once."""
    from buildkit.run import pipeline

    nodes, chains = graph(configs, options.target)
    if options.push:
        _ensure_repositories(configs)

    def work(image: str) -> None:
        node = nodes[image]
        targeted = node.layer == options.target
        node_options = dataclasses.replace(
            options,
            target=node.layer,
            no_cache=options.no_cache and targeted,
            local_target=options.local_target and targeted,
        )
        with log.scope(f"{node.config.name}/{node.layer}"):
            node.outcome = pipeline.run(node.config, node_options, node.phases)[-1]

    parents = {image: (n.parent,) if n.parent else () for image, n in nodes.items()}
    failures = run_graph(parents, work, jobs)
    counts = Counter(image for images in chains for image in images)
    return [
        _app_run(config, images, nodes, failures, counts)
        for config, images in zip(configs, chains, strict=True)
    ]


def _app_run(
    config: Config,
    images: tuple[str, ...],
    nodes: Mapping[str, Node],
    failures: Mapping[str, BaseException],
    counts: Counter[str],
) -> AppRun:
    phases: dict[str, float] = {}
    for image in images:
        if nodes[image].config is config:
            for name, seconds in nodes[image].phases.items():
                phases[name] = phases.get(name, 0.0) + seconds
    error = next((failures[i] for i in images if i in failures), None)
    outcomes = [o for o in (nodes[i].outcome for i in images) if o is not None]
    shared = frozenset(i for i in images if counts[i] > 1)
    return AppRun(config, images, outcomes, phases, error, shared)


def _ensure_repositories(configs: Sequence[Config]) -> None:
    """Create every app's ECR repositories before the nodes run, one app after the other: two
    nodes creating the apps' shared Ruby repository at once would race (a no-op elsewhere)."""
    from buildkit.run.access import ensure_ecr_repositories, open_registry

    for config in configs:
        opened, access = open_registry(config)
        ensure_ecr_repositories(opened, access)


def first_failure(runs: Sequence[AppRun]) -> BaseException | None:
    """The failure to exit with: a layer's own, before any 'a layer it is built on failed'."""
    errors = [r.error for r in runs if r.error is not None]
    own = [e for e in errors if not isinstance(e, DependencyFailed)]
    chosen = own or errors
    return chosen[0] if chosen else None


def _chain(config: Config, target: str) -> list[LayerSpec]:
    cache = digest_cache(config)
    cache.load()
    specs = layers.chain(config, cache)[: len(layers_up_to(target))]
    cache.save()
    return specs
