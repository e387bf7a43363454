"""`ruby`/`base`/`app`/`plan` over several apps of one config (docs/monorepo.md): `--jobs N`,
and the per-app reports and JSON. A config with one app keeps the single-app paths and shapes."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from buildkit import log
from buildkit.chain.model import RunOptions
from buildkit.config import envvars
from buildkit.config import loading as configmod
from buildkit.errors import ConfigError

JOBS_HELP = (
    "Layers built at once over several apps (default: IMGBUILD_JOBS, else what the machine "
    "can take: its CPUs, one per 2 GiB of RAM)."
)
JobsOpt = Annotated[str | None, typer.Option("--jobs", help=JOBS_HELP, metavar="N")]


def jobs(flag: str | None) -> int:
    """--jobs N, else IMGBUILD_JOBS, else run.fleet.default_jobs(); a whole number ≥ 1."""
    given = given_jobs(flag)
    if given is not None:
        return given
    from buildkit.run import fleet

    return fleet.default_jobs()


def given_jobs(flag: str | None) -> int | None:
    """--jobs N, else IMGBUILD_JOBS, checked (a whole number ≥ 1); None when neither is given.
    A one-app run checks them only: it has no default to work out."""
    given = flag if flag is not None else envvars.value(os.environ, "IMGBUILD_JOBS")
    if given is None:
        return None
    source = "--jobs" if flag is not None else "IMGBUILD_JOBS"
    if not given.strip().isdigit() or int(given) < 1:
        raise ConfigError(f"{source} must be a whole number ≥ 1, not {given!r}")
    return int(given)


def label(config: configmod.Config) -> str:
    return config.app_key or config.name


def run_apps(
    configs: Sequence[configmod.Config],
    options: RunOptions,
    jobs_flag: str | None,
    as_json: bool,
    *,
    kustomize: Path | None = None,
) -> None:
    """Build every app's chain through run.fleet, report each app, then raise the first
    failure (after the reports of the apps that got through). With `kustomize`, each app that
    got through is pinned in that kustomization under its own image name."""
    from buildkit import reports
    from buildkit.run import fleet
    from buildkit.run import kustomize as kustomizemod

    count = jobs(jobs_flag)
    targets = _kustomize_targets(configs, kustomize) if kustomize is not None else {}
    timer = log.Timer()
    runs = fleet.run(configs, options, count)
    documents: list[dict[str, Any]] = []
    for run in runs:
        head: dict[str, Any] = {"app": label(run.config), "name": run.config.name}
        head["shared"] = sorted(run.shared)
        if run.error is not None:
            log.error(f"app {label(run.config)}: {getattr(run.error, 'message', run.error)}")
            documents.append({**head, "error": str(run.error)})
            continue
        log.info(f"app {label(run.config)}:")
        data = reports.after_run(run.config, run.outcomes, timer.seconds, phases=run.phases)
        target = targets.get(label(run.config))
        if target is not None:
            data["kustomize"] = kustomizemod.pin(target, run.outcomes)
        documents.append({**head, **data})
    if as_json:
        print(json.dumps({"apps": documents, "built": _built(runs)}, indent=2))
    failure = fleet.first_failure(runs)
    if failure is not None:
        raise failure


def _kustomize_targets(configs: Sequence[configmod.Config], directory: Path) -> dict[str, Any]:
    """Every app's entry in the one kustomization, checked before anything is built; two apps
    pinned under one image name would overwrite each other."""
    from buildkit.run import kustomize as kustomizemod

    targets: dict[str, Any] = {}
    names: dict[str, str] = {}
    for config in configs:
        target = kustomizemod.prepare(config, directory)
        other = names.setdefault(target.name, label(config))
        if other != label(config):
            raise ConfigError(
                f"{config.path}: apps {other} and {label(config)} would both be pinned as "
                f"images: {target.name} in {target.path}; give each app its own kustomize.name"
            )
        targets[label(config)] = target
    return targets


def _built(runs: Sequence[Any]) -> list[str]:
    """Each image this run built, once, however many apps share it."""
    images = {o.plan.spec.image: o.built for r in runs for o in r.outcomes}
    return sorted(image for image, built in images.items() if built)


def plan_apps(configs: Sequence[configmod.Config], as_json: bool) -> None:
    """Each app's plan; an image several apps share is said once, then marked shared."""
    from buildkit.chain import plan as planmod
    from buildkit.engine import docker_api
    from buildkit.run.access import open_registry

    docker_api.client()
    seen: dict[str, str] = {}
    documents = []
    for config in configs:
        resolved, access = open_registry(config)
        client = access.client() if resolved.registry else None
        plans = planmod.make_plan(resolved, registry=client)
        layers = []
        if not as_json:
            print(f"app {label(config)} ({config.name})")
        for p in plans:
            first = seen.setdefault(p.spec.image, label(config))
            layers.append({**p.as_json(), "shared_with": None if first == label(config) else first})
            if as_json:
                continue
            if first != label(config):
                print(f"  {p.spec.name:5} {p.status:10} {p.spec.image} (shared: see app {first})")
                continue
            print(f"  {p.spec.name:5} {p.status:10} {p.spec.image}")
            for reason in p.reasons:
                print(f"        - {reason}")
        documents.append({"app": label(config), "name": config.name, "layers": layers})
    if as_json:
        print(json.dumps({"apps": documents}, indent=2))
