"""The app image assembled straight into the registry: no Docker daemon, no base pull.

When the app Dockerfile only sets metadata around its context COPY (applayer.nativefile), the
app image is the base image's layers + one layer holding the context (applayer.layertar) + a
config = the base's config, that layer's diff_id and what the metadata instructions set
(applayer.imageconfig). It is pushed in the order that never lets a tag point at a missing
blob: base layers mounted into the app's repository (never downloaded where the registry
mounts), the new layer and the config uploaded, the manifest put last under the content tag.

Reproducible: the layer's entries are sorted and stamped with the commit time, the config's
times are the commit time too, so two machines building one commit push one digest and an
immutable content tag never conflicts. `IMGBUILD_NATIVE=off` turns the path off.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit import cachedir, log
from buildkit.applayer import imageconfig, layertar, nativefile
from buildkit.chain import inputsref
from buildkit.chain.model import LayerOutcome, LayerSpec
from buildkit.config.loading import Config
from buildkit.engine.registry import Manifest, RegistryClient, split_ref
from buildkit.errors import RegistryError
from buildkit.source import dockerignore, gitinfo

if TYPE_CHECKING:
    from buildkit.engine import progress

ENV = "IMGBUILD_NATIVE"
CONFIG_TYPE = "application/octet-stream"  # how the registry client uploads a blob
_OFF = ("off", "0", "false", "no")
_LINK_WORKERS = 4  # concurrent registry requests while linking the base layers


def enabled() -> bool:
    return os.environ.get(ENV, "on").strip().lower() not in _OFF


def eligible(spec: LayerSpec) -> bool:
    """Whether the app Dockerfile alone allows the path (no registry asked): plan then skips
    the daemon for an app the push will assemble."""
    if not enabled() or spec.name != "app":
        return False
    text = spec.dockerfile.read_text(encoding="utf-8")
    return not isinstance(nativefile.analyse(text, spec.build_args, ()), str)


@dataclass(frozen=True)
class BaseImage:
    """The image the app is assembled on, as the registry has it."""

    ref: str
    repo: str
    manifest: Manifest  # an image manifest (an index is resolved to our platform's entry)
    config: Mapping[str, Any]


@dataclass(frozen=True)
class Choice:
    """reason None: the path applies, with its recipe and base; else why it does not."""

    reason: str | None
    recipe: nativefile.Recipe | None = None
    base: BaseImage | None = None


def choose(config: Config, spec: LayerSpec, client: RegistryClient | None) -> Choice:
    """Whether the (stale, pushed) app is assembled in the registry, or why BuildKit builds it."""
    if not enabled():
        return Choice(f"{ENV}=off")
    if client is None:
        return Choice("no registry to assemble the image in")
    base = _usable_base(client, spec.build_args["BASE_IMAGE"], config.platform)
    if isinstance(base, str):
        return Choice(base)
    settings = base.config.get("config") or {}
    recipe = nativefile.analyse(
        spec.dockerfile.read_text(encoding="utf-8"),
        spec.build_args,
        tuple(settings.get("Env") or ()),
        base_workdir=str(settings.get("WorkingDir") or "/"),
        base_user=str(settings.get("User") or ""),
    )
    if isinstance(recipe, str):
        return Choice(f"{spec.dockerfile}: {recipe}")
    return Choice(None, recipe, base)


def _usable_base(client: RegistryClient, base_ref: str, platform: str | None) -> BaseImage | str:
    """The app's base as the registry has it, or why the app cannot be assembled on it."""
    host, repo, tag = split_ref(base_ref)
    if host != client.host:
        return f"its base {base_ref} is on another registry than {client.host}"
    base = _read_base(client, base_ref, repo, tag, platform)
    if base is None:
        return f"its base {base_ref} is not in the registry yet (built in this run)"
    unsupported = imageconfig.unsupported_base(base.config)
    return f"{unsupported} ({base_ref})" if unsupported else base


def _read_base(
    client: RegistryClient, ref: str, repo: str, tag: str, configured: str | None
) -> BaseImage | None:
    found = client.manifest(repo, tag)
    manifest = imageconfig.image_manifest(client, repo, found, configured) if found else None
    if manifest is None:
        return None
    config = json.loads(client.blob(repo, str(manifest.body["config"]["digest"])))
    return BaseImage(ref=ref, repo=repo, manifest=manifest, config=config)


def assemble(
    config: Config,
    outcome: LayerOutcome,
    client: RegistryClient,
    choice: Choice,
    labels: Mapping[str, str],
) -> None:
    """Write, upload and tag the app image; fill the outcome as a build + push would."""
    assert choice.recipe is not None
    assert choice.base is not None
    spec = outcome.plan.spec
    assert spec.context is not None
    _, repo, tag = split_ref(spec.image)
    log.info(f"app: assembling {spec.image} in the registry on {choice.base.ref} (no daemon)")
    timer = log.Timer()
    epoch = gitinfo.source_epoch(spec.context)
    scratch = cachedir.native_scratch(config.cache_dir)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=f".{os.getpid()}.") as work:
        layer = _write_layer(spec, choice.recipe, Path(work) / "layer.tar.gz", epoch)
        outcome.build_seconds = timer.seconds
        outcome.steps = (_copy_step(choice.recipe, outcome.build_seconds),)
        config_bytes = imageconfig.compose_config(
            choice.base.config, choice.recipe, layer.diff_id, created=_rfc3339(epoch), labels=labels
        )
        config_digest = _sha256(config_bytes)
        push_timer = log.Timer()
        _push_blobs(
            client,
            repo,
            choice.base,
            Path(work),
            [
                lambda: _upload_file(client, repo, layer.digest, layer.path),
                lambda: _upload_bytes(client, repo, config_digest, config_bytes),
                lambda: inputsref.push_blobs(client, repo, spec.inputs),
            ],
        )
    media_type, raw = imageconfig.compose_manifest(
        choice.base.manifest.body, config_bytes, layer.digest, layer.size
    )
    manifest = Manifest(digest=_sha256(raw), media_type=media_type, body=json.loads(raw), raw=raw)
    outcome.digest = _put_content_tag(client, spec, repo, tag, manifest)
    if outcome.digest == manifest.digest:
        outcome.written = {
            manifest.digest: (media_type, raw),
            config_digest: (CONFIG_TYPE, config_bytes),
        }
    inputsref.push(client, repo, tag, manifest, spec.inputs)
    outcome.push_seconds = push_timer.seconds
    outcome.built = outcome.pushed = True
    outcome.path = "native"
    outcome.image_id = config_digest
    outcome.layer_sizes[layer.diff_id] = layer.uncompressed
    outcome.tags.append(tag)
    log.info(
        f"app: assembled in the registry: {layer.size / 1e6:.1f} MB layer ({layer.entries} "
        f"entries) written in {outcome.build_seconds:.1f}s, pushed in "
        f"{outcome.push_seconds:.1f}s"
    )


def _copy_step(recipe: nativefile.Recipe, seconds: float) -> progress.Step:
    """The context COPY as the report's one executed step (the metadata steps take no time)."""
    from buildkit.engine import progress  # ~25 ms of imports a run that assembles nothing skips

    copy = next((step for step in recipe.steps if step.instruction == "COPY"), None)
    text = copy.text if copy is not None and copy.text else f"COPY . {recipe.dest}"
    return progress.Step(name=f"[native] {text}", seconds=seconds, cached=False)


def _write_layer(
    spec: LayerSpec, recipe: nativefile.Recipe, out: Path, epoch: int
) -> layertar.LayerBlob:
    assert spec.context is not None
    return layertar.write_layer(
        spec.context,
        dockerignore.IgnoreRules(spec.ignore),
        recipe.dest,
        out,
        mtime=epoch,
        owner=recipe.owner,
        chmod=recipe.chmod,
        extra_dirs=recipe.extra_dirs,
        present_dirs=recipe.present_dirs,
        durable=False,  # a scratch file: uploaded, then deleted with its directory
    )


def _push_blobs(
    client: RegistryClient,
    repo: str,
    base: BaseImage,
    work: Path,
    uploads: Sequence[Callable[[], None]],
) -> None:
    """Make every base layer readable in the app's repository and run `uploads` (the new layer,
    the config): base layers are mounted across repositories where the registry allows it
    (distribution; ECR with BLOB_MOUNTING), else copied through this machine (download +
    upload, still no daemon) and said once.

    The mounts and the uploads are independent requests: they run side by side, one kept-alive
    connection per worker (a one-shot run's wall time: issue 17, P2-ONESHOT). Nothing names
    these blobs until the manifest is put, after all of them."""
    from concurrent.futures import ThreadPoolExecutor  # only a native push pays for threads

    digests = (
        []
        if base.repo == repo
        else [str(x["digest"]) for x in base.manifest.body.get("layers") or ()]
    )

    def linked(digest: str) -> bool:
        return client.mount_blob(repo, digest, base.repo) or client.has_blob(repo, digest)

    with ThreadPoolExecutor(max_workers=_LINK_WORKERS) as pool:
        pending = [pool.submit(upload) for upload in uploads]
        answers = list(pool.map(linked, digests))
        for done in pending:
            done.result()
    missing = [digest for digest, ok in zip(digests, answers, strict=True) if not ok]
    if missing:
        log.warn(
            f"registry {client.host} does not mount blobs from {base.repo} into {repo}; "
            "copying the base layers (on ECR: `imgbuild ecr ensure` turns BLOB_MOUNTING on)"
        )
    for digest in missing:
        copy = work / "base-layer"
        with copy.open("w+b") as out:
            client.download_blob(base.repo, digest, out)
        _upload_file(client, repo, digest, copy)
        copy.unlink()


def _upload_bytes(client: RegistryClient, repo: str, digest: str, data: bytes) -> None:
    if not client.has_blob(repo, digest):
        client.upload_blob(repo, digest, data)
    client.remember(repo, digest, CONFIG_TYPE, data)  # the report reads it from here


def _upload_file(client: RegistryClient, repo: str, digest: str, path: Path) -> None:
    if client.has_blob(repo, digest):
        return  # the same layer from an earlier run or another machine: reproducible
    with path.open("rb") as payload:
        client.upload_blob(repo, digest, payload)


def _put_content_tag(
    client: RegistryClient, spec: LayerSpec, repo: str, tag: str, manifest: Manifest
) -> str:
    """The manifest under the content tag, never over another image there: a concurrent run
    that pushed this key first wins (same inputs, and with this path the same digest)."""
    current = client.exists(repo, tag)
    if current is not None:
        if current != manifest.digest:
            log.warn(f"{spec.image} was pushed by another run meanwhile; using the registry's")
        return current
    digest = client.put_manifest(repo, tag, manifest)
    if digest != manifest.digest:
        raise RegistryError(
            f"registry {client.host} stored {spec.image} as {digest}, not {manifest.digest}; "
            "it rewrote the manifest: set IMGBUILD_NATIVE=off for this registry"
        )
    return digest


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _rfc3339(epoch: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
