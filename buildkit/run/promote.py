"""Copy the chain between registries by digest, without rebuilding (dev account → prod account).

Blobs missing in the target are streamed through a temp file (layers never sit in memory), then
each manifest is PUT with its exact bytes under its content tag, so the target's digest equals the
source's; that equality is checked, then the target's tag policy is applied.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass

from buildkit import log
from buildkit.chain import layers, tagpolicy
from buildkit.config.loading import LAYERS, Config
from buildkit.engine.registry import Manifest, RegistryClient, split_ref
from buildkit.errors import ImgbuildError, PushFailedError, RegistryError
from buildkit.run import pushing
from buildkit.run.access import open_registry
from buildkit.source import gitinfo


@dataclass(frozen=True)
class Promoted:
    layer: str
    source: str
    target: str
    digest: str
    blobs_copied: int


def promote(
    config: Config, target_layer: str, source: str, target: str, *, release: bool | None
) -> list[Promoted]:
    if source == target:
        raise ImgbuildError(f"--from and --to are both {source}; name two registries")
    src_config, src_access = open_registry(dataclasses.replace(config, registry=source))
    dst_config, dst_access = open_registry(dataclasses.replace(config, registry=target))
    from buildkit.run.access import ensure_ecr_repositories

    ensure_ecr_repositories(dst_config, dst_access)
    names = LAYERS[: LAYERS.index(target_layer) + 1]
    src_specs = layers.chain(src_config)[: len(names)]
    dst_specs = layers.chain(dst_config)[: len(names)]
    src_client, dst_client = src_access.client(), dst_access.client()
    results = [
        _copy(src_client, dst_client, s.image, d.image)
        for s, d in zip(src_specs, dst_specs, strict=True)
    ]
    policy = tagpolicy.make(dst_config, gitinfo.detect(config.app.context), release)
    for spec, result in zip(dst_specs, results, strict=True):
        for tag in policy.moving_for(spec.name):
            pushing.write_tag(dst_client, spec, tag, immutable=False, digest=result.digest)
        log.info(f"{result.layer}: {result.source} → {result.target} ({result.digest})")
    return results


def _copy(src: RegistryClient, dst: RegistryClient, source: str, target: str) -> Promoted:
    _, src_repo, tag = split_ref(source)
    _, dst_repo, _ = split_ref(target)
    manifest = src.manifest(src_repo, tag)
    if manifest is None:
        raise RegistryError(f"{source} is not in the source registry; build and push it first")
    existing = dst.exists(dst_repo, tag)
    if existing == manifest.digest:
        return Promoted(_layer(source), source, target, manifest.digest, 0)
    if existing is not None:
        raise PushFailedError(
            f"{target} already points at {existing}, not {manifest.digest}; content tags are "
            "immutable, refusing to overwrite"
        )
    copied = _copy_blobs(src, dst, src_repo, dst_repo, manifest)
    digest = dst.put_manifest(dst_repo, tag, manifest)
    if digest != manifest.digest:
        raise PushFailedError(f"{target} got digest {digest}, the source has {manifest.digest}")
    return Promoted(_layer(source), source, target, digest, copied)


def _copy_blobs(
    src: RegistryClient, dst: RegistryClient, src_repo: str, dst_repo: str, manifest: Manifest
) -> int:
    """Everything `manifest` refers to, so that the target can accept it. An index (what buildx
    pushes from an engine with attestations: the platform image plus its provenance) is copied
    whole: each child manifest, by digest, after its own blobs, so the index's digest holds."""
    if "manifests" in manifest.body:
        return sum(
            _copy_child(src, dst, src_repo, dst_repo, str(entry["digest"]))
            for entry in manifest.body["manifests"]
        )
    blobs = [
        manifest.body["config"]["digest"],
        *(layer["digest"] for layer in manifest.body.get("layers") or ()),
    ]
    copied = 0
    for digest in blobs:
        if dst.has_blob(dst_repo, digest):
            continue
        with tempfile.TemporaryFile() as buffer:
            src.download_blob(src_repo, digest, buffer)
            dst.upload_blob(dst_repo, digest, buffer)
        copied += 1
    return copied


def _copy_child(
    src: RegistryClient, dst: RegistryClient, src_repo: str, dst_repo: str, digest: str
) -> int:
    if dst.exists(dst_repo, digest) == digest:
        return 0
    child = src.manifest(src_repo, digest)
    if child is None:
        raise RegistryError(
            f"{src_repo}@{digest} is listed in its index but missing from the source registry; "
            "push the image again"
        )
    copied = _copy_blobs(src, dst, src_repo, dst_repo, child)
    dst.put_manifest(dst_repo, digest, child)
    return copied


def _layer(image: str) -> str:
    repo = split_ref(image)[1]
    return repo.rsplit("-", 1)[-1]
