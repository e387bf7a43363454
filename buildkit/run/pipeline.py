"""The main job: plan the chain, build what is stale in order, push, record.

resolve config → preflight → plan → build stale layers (ruby → base → app) → push content tags →
move `latest` → record inputs → summary. Builds are never retried; pushes are (idempotent).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit import log
from buildkit.chain import labels, state, tagpolicy
from buildkit.chain.model import MOVING_TAG, LayerOutcome, LayerPlan, LayerSpec, RunOptions
from buildkit.chain.plan import make_plan, record
from buildkit.config.loading import Config
from buildkit.engine import docker_api
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.errors import BuildKitUnavailableError, ImgbuildError
from buildkit.run import gemseed, native, pushing, secrets
from buildkit.run.access import RegistryAccess, ensure_ecr_repositories, open_registry
from buildkit.source import gitinfo

if TYPE_CHECKING:
    from buildkit.engine import builder


def preflight(config: Config, *, push: bool) -> None:
    """Fail fast, with one line, on what would fail later. The daemon (docker_api.client) and
    BuildKit (builder.detect) are checked when first needed: a no-op `--push` whose images are
    all in the registry never starts the Docker SDK (~0.25 s of imports and a ping)."""
    if push and not config.registry:
        raise ImgbuildError(
            f"{config.path}: --push needs a registry; set registry: in the config, "
            "IMGBUILD_REGISTRY or --registry"
        )


def run(
    config: Config,
    options: RunOptions,
    phases: dict[str, float] | None = None,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> list[LayerOutcome]:
    """Run the chain; `phases` (when given) receives the seconds of the non-build phases
    (plan, pull, tags, record) so reports can account for the whole wall time. `meanwhile`
    is called once the plan is made: what follows mostly waits on BuildKit and the registry,
    and the caller may start work of its own then (the CLI loads the report's modules)."""
    phases = {} if phases is None else phases
    timer = log.Timer()
    config, access = open_registry(config)
    preflight(config, push=options.push)
    if options.push:
        ensure_ecr_repositories(config, access)
    client = access.client() if config.registry else None
    force = frozenset({options.target}) if options.no_cache else frozenset()
    plans = make_plan(
        config,
        options.target,
        registry=client,
        force=force,
        push=options.push,
        registry_only=native.eligible,
    )
    outcomes = [LayerOutcome(plan=p, image_id=p.local_id, digest=p.remote_digest) for p in plans]
    phases["plan"] = timer.seconds
    _announce(plans)
    if meanwhile is not None:
        meanwhile()
    git = gitinfo.detect(config.app.context)
    stale = [o for o in outcomes if o.plan.status == "build"]
    choice = _native_choice(config, options, stale, client)
    assembling = choice is not None and choice.reason is None
    if assembling:
        stale = stale[:-1]  # the app: assembled in the registry once its parents are in
    if stale:
        _build_stale(config, options, stale, access, client, git)
    if assembling:
        assert client is not None
        assert choice is not None
        app = outcomes[-1]
        app_labels = _build_labels(app.plan.spec, git, config, reproducible=True)
        native.assemble(config, app, client, choice, app_labels)
    target = outcomes[-1]
    if not options.push and options.local_target and target.image_id is None:
        pull_timer = log.Timer()
        _pull(target, access)
        phases["pull"] = pull_timer.seconds
    if options.push:
        assert client is not None
        push_timer = log.Timer()
        policy = tagpolicy.make(config, git, options.release_tags)
        if options.content_tags_only:
            policy = tagpolicy.TagPolicy(release=False, app_tags=(), moving=(), app_moving=())
        pushing.push_chain(outcomes, access, client, policy)
        pushed = sum(o.push_seconds for o in outcomes)
        phases["tags"] = max(0.0, push_timer.seconds - pushed)
    record_timer = log.Timer()
    for outcome in outcomes:
        record(config, outcome.plan.spec)
    phases["record"] = record_timer.seconds
    return outcomes


def _builder_env(config: Config) -> dict[str, str]:
    """The buildx builder the config names (`builder:` or BUILDX_BUILDER), for `docker buildx`
    to read as it reads BUILDX_BUILDER: every build of the run goes to it."""
    return {"BUILDX_BUILDER": config.builder} if config.builder else {}


@contextmanager
def _naming_builder_origin(config: Config) -> Iterator[None]:
    """An error about the configured builder names where it was configured (file:line, or
    BUILDX_BUILDER), as every config error does."""
    try:
        yield
    except BuildKitUnavailableError as exc:
        if config.builder and f"'{config.builder}'" in exc.message:
            raise BuildKitUnavailableError(f"{config.builder_origin}: {exc.message}") from None
        raise


def _build_stale(
    config: Config,
    options: RunOptions,
    stale: list[LayerOutcome],
    access: RegistryAccess,
    client: RegistryClient | None,
    git: gitinfo.GitInfo,
) -> None:
    # Loaded only when something is built: the staging and BuildKit modules cost a no-op run
    # tens of ms of imports (tarfile, the progress parser).
    from buildkit.engine import builder
    from buildkit.run import underlays

    docker_api.client()  # a daemon that does not answer is exit 5, before BuildKit's check
    base_secrets = config.base.secrets if any(o.plan.spec.name == "base" for o in stale) else ()
    where = f"{config.path}: base.secrets"
    with (
        access.build_env() as registry_env,
        secrets.bundle_env_file(base_secrets, where=where) as files,
        _naming_builder_origin(config),
    ):
        env = {**registry_env, **_builder_env(config)}
        for outcome in stale:
            forced = options.no_cache and outcome.plan.spec.name == options.target
            outcome.forced = forced
            # A build on a local source snapshot has nothing to import: skip the round trips.
            on_snapshot = underlays.uses_snapshot(config, outcome.plan.spec)
            skip = forced or on_snapshot
            cache_from = [] if skip else _cache_from(outcome.plan.spec, config, client)
            build_secrets = files if outcome.plan.spec.name == "base" else {}
            _build(
                config,
                builder.detect(cache_dir=config.cache_dir),
                outcome,
                git,
                cache_from=cache_from,
                forced=forced,
                on_snapshot=on_snapshot,
                env=env,
                secrets=build_secrets,
                client=client,
                pull_auth=access.sdk_auth,
            )


def _native_choice(
    config: Config, options: RunOptions, stale: list[LayerOutcome], client: RegistryClient | None
) -> native.Choice | None:
    """For a stale app that this run pushes: assembled in the registry, or why BuildKit builds
    it (said, and kept in the outcome). None when the question does not arise."""
    if not options.push or not stale or stale[-1].plan.spec.name != "app":
        return None
    app = stale[-1]
    if options.no_cache and options.target == "app":
        choice = native.Choice("--no-cache asked for a BuildKit rebuild")
    else:
        choice = native.choose(config, app.plan.spec, client)
    if choice.reason is not None:
        app.path_reason = choice.reason
        log.info(f"app: building with BuildKit: {choice.reason}")
    return choice


def _announce(plans: list[LayerPlan]) -> None:
    for p in plans:
        why = f" ({'; '.join(p.reasons)})" if p.reasons else ""
        log.info(f"{p.spec.name}: {p.status} {p.spec.image}{why}")


def _build_labels(
    spec: LayerSpec, git: gitinfo.GitInfo, config: Config, *, reproducible: bool = False
) -> dict[str, str]:
    """The layer's labels. Its inputs are not among them: they travel beside the image as an
    artifact (chain.inputsref), so a push stores no 36 kB label in every app config."""
    result = {labels.KEY: spec.key, labels.LAYER: spec.name, **gemseed.labels(spec)}
    if spec.parent is not None:
        result[labels.PARENT] = spec.parent.image
    if spec.name == "app":
        result |= labels.process_labels(spec.processes)
        moment = (
            datetime.datetime.fromtimestamp(gitinfo.source_epoch(config.app.context), datetime.UTC)
            if reproducible
            else datetime.datetime.now(datetime.UTC)
        )
        result["org.opencontainers.image.created"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if git.commit:
            result["org.opencontainers.image.revision"] = git.commit
        source = config.app.source_url or git.source_url
        if source:
            result["org.opencontainers.image.source"] = source
    return result


def _cache_from(spec: LayerSpec, config: Config, client: RegistryClient | None) -> list[str]:
    """Registry images whose inline cache this build may reuse: the layer's `latest` and the
    image this machine last used for it. Only refs that exist, so logs carry no false errors.

    None when that last image is in the local daemon: BuildKit's local cache then holds its
    steps, and importing a registry cache costs a build manifest and config round trips per
    ref for nothing (a source change misses from the COPY on anyway)."""
    if client is None:
        return []
    candidates = [f"{spec.repository}:{MOVING_TAG}"]
    previous = state.load(config.cache_dir, spec.repository)
    if previous is not None and previous.image != spec.image:
        if docker_api.local_image(previous.image) is not None:
            return []
        if previous.image not in candidates:
            candidates.append(previous.image)
    refs = []
    for ref in candidates:
        _, repo, tag = split_ref(ref)
        if client.exists(repo, tag):
            refs.append(ref)
    return refs


def _build(
    config: Config,
    engine: builder.Engine,
    outcome: LayerOutcome,
    git: gitinfo.GitInfo,
    *,
    cache_from: list[str],
    forced: bool,
    on_snapshot: bool,
    env: Mapping[str, str],
    secrets: Mapping[str, Path],
    client: RegistryClient | None = None,
    pull_auth: Callable[[], Mapping[str, str] | None] = lambda: None,
) -> None:
    from buildkit.engine import builder
    from buildkit.run import staging as contexts
    from buildkit.run import underlays

    spec = outcome.plan.spec
    log.info(f"{spec.name}: building {spec.image}")
    under_seconds = 0.0
    # Staged Dockerfiles and the ruby context are shared per cache dir and image: concurrent
    # runs take turns, so none builds with another's half-written files.
    with contexts.staging_lock(config, spec):
        if spec.assets is not None:  # under the bulk, which is built FROM it
            under_seconds += underlays.ensure_assets(
                config, engine, spec, client, pull_auth=pull_auth, forced=forced, env=env
            )
        if spec.bulk is not None:
            under_seconds += underlays.ensure_bulk(
                config, engine, spec, client, forced=forced, env=env
            )
        build_args = dict(spec.build_args)
        if not forced:  # --no-cache: every gem compiled again, as asked
            build_args |= gemseed.seed_build_args(config, spec, client)
        if on_snapshot:
            decision, seconds = underlays.ensure_snapshot(
                config, engine, spec, forced=forced, env=env
            )
            under_seconds += seconds
            outcome.snapshot = decision.as_json()
            dockerfile, context = contexts.stage_delta(config, spec, decision.changed)
            build_args["BASE_IMAGE"] = decision.snapshot.image
        else:
            dockerfile = contexts.stage_dockerfile(config, spec)
            context = spec.context or contexts.stage_ruby_context(config, spec)
        request = builder.BuildRequest(
            label=spec.name,
            dockerfile=dockerfile,
            context=context,
            tags=[spec.image],
            build_args=build_args,
            labels=_build_labels(spec, git, config),
            cache_from=cache_from,
            no_cache=forced,
            platform=config.platform,
            secrets=secrets,
        )
        try:
            result = builder.build(engine, request, env)
        finally:
            if on_snapshot:  # the delta's hard links to the app's files are not kept
                contexts.clear_delta(config, spec)
    outcome.built = True
    outcome.path = "buildkit"
    outcome.image_id = result.image_id
    outcome.build_seconds = result.seconds + under_seconds
    outcome.steps = result.steps
    outcome.digest = None  # a new image: its registry digest is known only after a push
    log.info(f"{spec.name}: built in {result.seconds:.1f}s")


def _pull(outcome: LayerOutcome, access: RegistryAccess) -> None:
    spec = outcome.plan.spec
    log.info(f"{spec.name}: pulling {spec.image} from the registry")
    docker_api.pull(spec.image, access.sdk_auth())
    local = docker_api.local_image(spec.image)
    outcome.image_id = local.id if local else None
    outcome.pulled = True
