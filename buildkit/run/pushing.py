"""Push the chain and write its tags, in an order that never exposes a half-pushed chain.

1. content-key tags, layer by layer (skipped when the registry already has that manifest);
2. the app's immutable extra tags (git commit, git tag);
3. moving tags (`latest`, `main`, `pr-N`, `branch-x`), only once every layer's content tag is in.
Tags are written as manifest PUTs of the exact bytes already pushed, so digests cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from buildkit import log
from buildkit.chain import inputsref
from buildkit.chain.model import LayerOutcome, LayerSpec
from buildkit.chain.tagpolicy import TagPolicy
from buildkit.engine import docker_api
from buildkit.engine.registry import Manifest, RegistryClient, split_ref
from buildkit.errors import PushFailedError
from buildkit.run.access import AUTH_ERRORS, RegistryAccess

#: Pushes one image through the daemon, returns its manifest digest (tests pass a fake).
PushImage = Callable[[str, Mapping[str, str] | None], str]


def push_chain(
    outcomes: Sequence[LayerOutcome],
    access: RegistryAccess,
    client: RegistryClient,
    policy: TagPolicy,
    *,
    push_image: PushImage = docker_api.push,
) -> None:
    for outcome in outcomes:
        _push_content(outcome, access, client, push_image)
    app = outcomes[-1]
    if app.plan.spec.name == "app":
        for tag in policy.app_tags:
            write_tag(client, app.plan.spec, tag, immutable=True, outcome=app)
    for outcome in outcomes:
        for tag in policy.moving_for(outcome.plan.spec.name):
            write_tag(client, outcome.plan.spec, tag, immutable=False, outcome=outcome)


def _manifest(client: RegistryClient, image: str) -> Manifest:
    _, repo, tag = split_ref(image)
    manifest = client.manifest(repo, tag)
    if manifest is None:
        raise PushFailedError(f"{image} is not in the registry after its push; push again")
    return manifest


def _push_content(
    outcome: LayerOutcome, access: RegistryAccess, client: RegistryClient, push_image: PushImage
) -> None:
    spec = outcome.plan.spec
    if outcome.digest is not None and not outcome.built:
        return  # the plan found it in the registry under its content key: nothing to push
    if outcome.path == "native":
        return  # assembled in the registry (run.native): its content tag is in already
    _, repo, tag = split_ref(spec.image)
    remote = client.exists(repo, tag)  # a built layer: another run may have pushed it meanwhile
    if outcome.image_id is None:
        raise PushFailedError(
            f"{spec.image} is neither local nor in the registry; rerun without --push to build it"
        )
    if remote is not None:
        # Rebuilt under a key the registry already has (--no-cache): compare image IDs before
        # pushing anything, so the immutable tag is never touched. The ID is the config digest
        # in a classic image store, the manifest's (or index's) digest in the containerd store.
        manifest = _manifest(client, spec.image)
        config = manifest.body.get("config", {}).get("digest")
        if outcome.image_id in (config, remote):
            outcome.digest = remote
            return
        if not outcome.forced:
            # Another run (a concurrent CI job) pushed this key first: same inputs, so its image
            # is as good as ours; use it rather than fail.
            log.warn(f"{spec.image} was pushed by another run meanwhile; using the registry's")
            outcome.digest = remote
            return
        raise PushFailedError(
            f"content tag {spec.image} already points at {remote}, a different image than the "
            "rebuilt one (builds are not bit-reproducible); content tags are immutable, so "
            "nothing was pushed: keep the registry's image or change an input"
        )
    timer = log.Timer()
    # The app's hidden images first, bottom up (the app is built FROM them).
    if spec.assets is not None:
        _push_hidden("assets", spec.assets.image, access, client, push_image)
    if spec.bulk is not None:
        _push_hidden("bulk", spec.bulk.image, access, client, push_image)
    log.info(f"{spec.name}: pushing {spec.image}")
    digest = _sdk_push(spec.image, access, push_image)
    inputsref.push(client, repo, tag, _manifest(client, spec.image), spec.inputs)
    outcome.digest = digest
    outcome.push_seconds = timer.seconds
    outcome.pushed = True
    outcome.tags.append(tag)


def _push_hidden(
    what: str, image: str, access: RegistryAccess, client: RegistryClient, push_image: PushImage
) -> None:
    """An image the app is built FROM (its assets, its bulk), before the app (they share its
    layers, so the app push then skips them): other machines pull the assets image instead of
    precompiling again, and import the bulk image as cache instead of re-uploading the bulk."""
    _, repo, tag = split_ref(image)
    if client.exists(repo, tag) is None and docker_api.local_image(image) is not None:
        log.info(f"app: pushing its {what} image {image}")
        _sdk_push(image, access, push_image)


def _sdk_push(image: str, access: RegistryAccess, push_image: PushImage) -> str:
    """Push through the daemon; on an auth error renew the token once (it may have expired)."""
    try:
        return push_image(image, access.sdk_auth())
    except PushFailedError as exc:
        if access.tokens is None or not any(w in str(exc).lower() for w in AUTH_ERRORS):
            raise
    log.info(f"push of {image} was refused; renewing the registry token and retrying")
    return push_image(image, access.sdk_auth(force=True))


def write_tag(
    client: RegistryClient,
    spec: LayerSpec,
    tag: str,
    *,
    immutable: bool,
    outcome: LayerOutcome | None = None,
    digest: str | None = None,
) -> None:
    """Point spec's repository:tag at spec's image (its manifest digest is `digest`, or the
    outcome's); an immutable tag that exists is left alone. The manifest is fetched only when
    the tag really has to move, so a no-op run costs one HEAD per tag."""
    repo = split_ref(spec.image)[1]
    want = digest or (outcome.digest if outcome is not None else None)
    current = client.exists(repo, tag)
    if want is not None and current == want:
        return
    # By digest when the run knows it: the bytes the content tag points at, which the client
    # may have in hand already (a native app's manifest; issue 17, P2-ONESHOT).
    by_digest = want is not None and want.startswith("sha256:")
    manifest = _manifest(client, f"{spec.repository}@{want}" if by_digest else spec.image)
    if current == manifest.digest:
        return
    if current is not None and immutable:
        log.warn(
            f"{spec.repository}:{tag} already points at {current}, not {manifest.digest}; "
            "tags like it are immutable, leaving it"
        )
        return
    client.put_manifest(repo, tag, manifest)
    if outcome is not None:
        outcome.tags.append(tag)
    log.info(f"{spec.name}: tagged {spec.repository}:{tag}")
