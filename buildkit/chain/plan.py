"""Decide, per layer, "up to date" or "build", and say why.

A layer is up to date when an image tagged with its key exists locally or in the registry. When it
must be built, the reasons compare its inputs with those recorded for the last image this machine
built or used for that layer ("Gemfile.lock changed", "ruby version 3.3.7 → 3.3.8").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from buildkit import cachedir
from buildkit.chain import inputsref, layers, state
from buildkit.chain.model import MOVING_TAG, LayerPlan, LayerSpec, Status
from buildkit.config.loading import LAYERS, Config
from buildkit.engine import docker_api
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.source import hashing

_DIGEST_PREFIXES = ("sha256:", "tree:")


def layers_up_to(target: str) -> tuple[str, ...]:
    return LAYERS[: LAYERS.index(target) + 1]


def digest_cache(config: Config) -> hashing.DigestCache:
    return hashing.DigestCache(cachedir.context_digests(config.cache_dir, config.app.context))


def make_plan(
    config: Config,
    target: str = "app",
    *,
    registry: RegistryClient | None = None,
    force: frozenset[str] = frozenset(),
    push: bool = False,
    local_image: Callable[[str], docker_api.LocalImage | None] = docker_api.local_image,
    registry_only: Callable[[LayerSpec], bool] = lambda _spec: False,
) -> list[LayerPlan]:
    """Plan the chain up to target. `force` names layers to rebuild even when up to date;
    without a registry client only the local daemon is asked. The daemon is not asked about a
    layer the registry has, unless the run needs that image locally (the target, without
    `push`): a no-op `--push` never touches the daemon, nor does a push of an app that
    `registry_only` says is assembled in the registry (run.native) rather than taken from the
    daemon. `local_image` asks the daemon (a seam: unit tests pass a fake image store)."""
    cache = digest_cache(config)
    cache.load()
    specs = layers.chain(config, cache)[: len(layers_up_to(target))]
    cache.save()
    plans: list[LayerPlan] = []
    for spec in specs:
        parent_plan = plans[-1] if plans else None
        needs_local = not push and spec.name == target
        lookup = _unless(registry_only, spec, local_image) if push else local_image
        plans.append(
            _plan_layer(
                config, spec, parent_plan, registry, spec.name in force, needs_local, lookup
            )
        )
    return plans


def _unless(
    registry_only: Callable[[LayerSpec], bool],
    spec: LayerSpec,
    local_image: Callable[[str], docker_api.LocalImage | None],
) -> Callable[[str], docker_api.LocalImage | None]:
    """local_image, except for a layer registry_only names (asked only if the daemon would be)."""

    def lookup(ref: str) -> docker_api.LocalImage | None:
        return None if registry_only(spec) else local_image(ref)

    return lookup


def _plan_layer(
    config: Config,
    spec: LayerSpec,
    parent: LayerPlan | None,
    registry: RegistryClient | None,
    forced: bool,
    needs_local: bool,
    local_image: Callable[[str], docker_api.LocalImage | None],
) -> LayerPlan:
    remote = None
    if registry is not None:
        _, repo, tag = split_ref(spec.image)
        remote = registry.exists(repo, tag)
    local = None
    if remote is None or needs_local:
        local = local_image(spec.image)
    present = local is not None or remote is not None
    if present and not forced:
        status: Status = "up-to-date"
        reasons: tuple[str, ...] = ()
    else:
        status = "build"
        reasons = (
            ("--no-cache asked for a rebuild",)
            if forced and present
            else tuple(explain(config, spec, parent, registry))
        )
    return LayerPlan(
        spec=spec,
        status=status,
        reasons=reasons,
        local_id=local.id if local else None,
        remote_digest=remote,
    )


def explain(
    config: Config,
    spec: LayerSpec,
    parent: LayerPlan | None,
    registry: RegistryClient | None = None,
) -> list[str]:
    """Why spec must be built, against the inputs recorded for this layer's last image on this
    machine, or else those stored beside the registry's `latest` (chain.inputsref): a fresh
    machine still says which files changed."""
    reasons: list[str] = []
    if parent is not None and parent.status == "build":
        reasons.append(
            f"{parent.spec.name} image changes (new {parent.spec.name} key {parent.spec.tag})"
        )
    previous = state.load(config.cache_dir, spec.repository)
    if previous is None and registry is not None:
        repo = split_ref(spec.image)[1]
        stored = inputsref.load_latest(registry, repo, MOVING_TAG)
        if stored is not None:
            changes = diff_inputs(stored, spec.inputs)
            return reasons + (changes or [f"image {spec.image} is missing"])
    if previous is None:
        where = f"locally or in {config.registry}" if config.registry else "locally"
        reasons.append(f"no image {spec.image} {where}, and no earlier build recorded")
        return reasons
    changes = diff_inputs(previous.inputs, spec.inputs)
    if not changes and not reasons:
        reasons.append(f"image {spec.image} is missing (deleted or never pushed)")
    return reasons + changes


def diff_inputs(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Human reasons for the difference between two recorded input maps."""
    reasons = []
    scalar_names = sorted({k for k in (*old, *new) if not k.startswith("file:")})
    for name in scalar_names:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None or after is None:
            reasons.append(f"{name} {'added' if before is None else 'removed'}")
        elif before.startswith(_DIGEST_PREFIXES) or after.startswith(_DIGEST_PREFIXES):
            reasons.append(f"{name} changed")
        else:
            reasons.append(f"{name} {before or '(none)'} → {after or '(none)'}")
    old_files = {k[5:]: v for k, v in old.items() if k.startswith("file:")}
    new_files = {k[5:]: v for k, v in new.items() if k.startswith("file:")}
    return reasons + hashing.diff_inputs(old_files, new_files)


def record(config: Config, spec: LayerSpec) -> None:
    """Remember spec's inputs as the last image used for its layer on this machine."""
    state.save(
        config.cache_dir,
        spec.repository,
        state.LayerRecord(key=spec.key, image=spec.image, inputs=spec.inputs),
    )
