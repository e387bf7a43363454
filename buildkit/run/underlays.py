"""The hidden images the app layer is built FROM: its precompiled assets (applayer/assets.py),
its bulk (applayer/bulk.py), then its source snapshot (applayer/snapshot.py). Each is built only
when the daemon lacks it (the assets image is pulled when the registry has it); all are staged
under the app's lock."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from buildkit import log
from buildkit.applayer import snapshot as delta
from buildkit.chain import labels, state
from buildkit.chain.model import LayerSpec
from buildkit.config.loading import Config
from buildkit.engine import builder, docker_api
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.errors import RegistryError
from buildkit.run import staging as contexts


def ensure_assets(
    config: Config,
    engine: builder.Engine,
    spec: LayerSpec,
    client: RegistryClient | None,
    *,
    pull_auth: Callable[[], Mapping[str, str] | None],
    forced: bool,
    env: Mapping[str, str],
) -> float:
    """Make the app's assets image local; return the seconds spent. The daemon's copy is used as
    is; else the registry's is pulled (a fresh CI machine does not precompile again: the
    precompile stage is not in the image's inline cache); else it is built."""
    assets = spec.assets
    assert assets is not None
    assert spec.parent is not None
    assert spec.context is not None  # the app layer: built from the app's context
    if not forced and docker_api.local_image(assets.image) is not None:
        return 0.0
    timer = log.Timer()
    _, repo, tag = split_ref(assets.image)
    if not forced and client is not None and client.exists(repo, tag):
        log.info(f"{spec.name}: pulling its assets image {assets.image}")
        try:
            docker_api.pull(assets.image, pull_auth())
        except RegistryError as exc:  # the registry's copy is a shortcut, not a need
            log.warn(f"could not pull {assets.image} ({exc}); building it")
        else:
            return timer.seconds
    log.info(
        f"{spec.name}: building its assets image {assets.image} ({assets.command}; "
        f"{assets.files} input files)"
    )
    request = builder.BuildRequest(
        label=f"{spec.name} assets",
        dockerfile=contexts.stage_assets_dockerfile(config, spec),
        context=spec.context,
        tags=[assets.image],
        build_args={"BASE_IMAGE": spec.parent.image},
        labels={labels.KEY: assets.key, labels.LAYER: f"{spec.name}-assets"},
        no_cache=forced,
        platform=config.platform,
    )
    return timer.seconds + builder.build(engine, request, env).seconds


def ensure_bulk(
    config: Config,
    engine: builder.Engine,
    spec: LayerSpec,
    client: RegistryClient | None,
    *,
    forced: bool,
    env: Mapping[str, str],
) -> float:
    """Build the app's bulk image unless the daemon has it; return the seconds spent. A
    machine without it imports the registry's copy as cache, so the bulk is not re-copied."""
    bulk = spec.bulk
    assert bulk is not None
    assert spec.parent is not None
    assert spec.context is not None  # the app layer: built from the app's context
    if not forced and docker_api.local_image(bulk.image) is not None:
        return 0.0
    _, repo, tag = split_ref(bulk.image)
    cache_from = [bulk.image] if client and not forced and client.exists(repo, tag) else []
    log.info(f"{spec.name}: building its bulk image {bulk.image} ({bulk.files} files)")
    request = builder.BuildRequest(
        label=f"{spec.name} bulk",
        dockerfile=contexts.stage_bulk_dockerfile(config, spec),
        context=spec.context,
        tags=[bulk.image],
        build_args={"BASE_IMAGE": (spec.assets or spec.parent).image},
        labels={labels.KEY: bulk.key, labels.LAYER: f"{spec.name}-bulk"},
        cache_from=cache_from,
        no_cache=forced,
        platform=config.platform,
    )
    return builder.build(engine, request, env).seconds


def uses_snapshot(config: Config, spec: LayerSpec) -> bool:
    """Whether the app builds on a source snapshot. Not on a machine's first build of it (a CI
    runner, which never builds again): a snapshot pays off from the next edit on, so the first
    build stays one step, with no second BuildKit run and no extra layer."""
    # Every run records its layers (plan.record), so a snapshot record implies this one.
    return spec.delta is not None and state.exists(config.cache_dir, spec.repository)


def ensure_snapshot(
    config: Config,
    engine: builder.Engine,
    spec: LayerSpec,
    *,
    forced: bool,
    env: Mapping[str, str],
) -> tuple[delta.Decision, float]:
    """The snapshot the app builds on, and the seconds spent making it (0 when reused)."""
    assert spec.delta is not None
    assert spec.context is not None
    previous = None if forced else delta.load(config.cache_dir, spec.repository)
    if previous is not None and docker_api.local_image(previous.image) is None:
        previous = None  # pruned from the daemon: its files are nowhere to build on
    decision = delta.decide(spec.delta, previous, spec.context)
    snapshot = decision.snapshot
    if not decision.fresh:
        log.info(f"{spec.name}: building on its source snapshot {snapshot.image} ({decision.why})")
        return decision, 0.0
    seconds = 0.0
    if forced or docker_api.local_image(snapshot.image) is None:
        count = len(snapshot.files)
        log.info(
            f"{spec.name}: building its source snapshot {snapshot.image} ({count} files; "
            f"{decision.why})"
        )
        request = builder.BuildRequest(
            label=f"{spec.name} snapshot",
            dockerfile=contexts.stage_snapshot_dockerfile(config, spec),
            context=spec.context,
            tags=[snapshot.image],
            build_args=spec.build_args,
            labels={labels.LAYER: f"{spec.name}-snapshot"},
            no_cache=forced,
            platform=config.platform,
        )
        seconds = builder.build(engine, request, env).seconds
    delta.save(config.cache_dir, spec.repository, snapshot)
    if previous is not None and previous.image != snapshot.image:
        docker_api.untag(previous.image)  # its layer lives on in the app images built on it
    return decision, seconds
