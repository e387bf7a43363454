"""The previous base image's gems as the seed of an empty gem cache (a fresh machine).

A stale base on a machine whose BuildKit cache is empty (every CodeBuild build) finds the gem
cache mount of images/base/Dockerfile empty, and bundle install would compile every gem again.
The base image in the registry holds the bundle of the previous build: passed as the BUNDLE_SEED
build arg, pinned by digest, its /usr/local/bundle fills the empty cache first, so only the gems
that changed are installed. BuildKit pulls it as a build stage, on any engine.

Only a bundle built for the same BUNDLE_CACHE_KEY (app, ruby image, build packages, groups) is
reused: every base image carries that key as the LABEL label, read here from the registry's
manifest and config blob (never a layer).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from buildkit import log
from buildkit.applayer import imageconfig
from buildkit.chain import state
from buildkit.chain.model import MOVING_TAG, LayerSpec
from buildkit.config.loading import Config
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.errors import ImgbuildError

ENV = "IMGBUILD_GEM_SEED"  # "off": never seed (a bundle built from nothing, as before)
LABEL = "org.imgbuild.bundle"
BUILD_ARG = "BUNDLE_SEED"
KEY_ARG = "BUNDLE_CACHE_KEY"  # the base build arg that names the gem cache (chain.layers)
_DECLARES_SEED = re.compile(rf"^\s*ARG\s+{BUILD_ARG}\b", re.IGNORECASE | re.MULTILINE)


def labels(spec: LayerSpec) -> dict[str, str]:
    """The label naming the gem cache a base image's bundle was built for; none on other layers."""
    key = spec.build_args.get(KEY_ARG) if spec.name == "base" else None
    return {LABEL: key} if key else {}


def seed_build_args(
    config: Config, spec: LayerSpec, client: RegistryClient | None
) -> dict[str, str]:
    """{BUNDLE_SEED: repo@digest} of the previous base image whose bundle was built for this
    spec's gem cache key (the repository's `latest`, else the image this machine last used for
    the layer), or {} when there is none; says which, or why none, in one line."""
    key = spec.build_args.get(KEY_ARG)
    if spec.name != "base" or not key or not _declares_seed(spec):
        return {}
    switch = os.environ.get(ENV, "on").strip()
    if switch.lower() in ("off", "0", "false", "no"):
        log.info(f"base: gems not seeded: {ENV}={switch}")
        return {}
    if client is None:
        log.info("base: gems not seeded: no registry to find the previous base image in")
        return {}
    reasons = []
    for ref in _candidates(config, spec):
        try:
            found, why = _matching(client, ref, key, config.platform)
        except (ImgbuildError, ValueError, KeyError, TypeError) as exc:
            found, why = None, f"{ref} is unreadable ({exc})"
        if found is not None:
            log.info(f"base: gems seeded from {found} ({ref}, bundle {key})")
            return {BUILD_ARG: found}
        reasons.append(why)
    log.info(f"base: gems not seeded: {'; '.join(reasons)}")
    return {}


def _declares_seed(spec: LayerSpec) -> bool:
    """Whether the base Dockerfile takes a seed (imgbuild's does; an app's own may not)."""
    try:
        return bool(_DECLARES_SEED.search(spec.dockerfile.read_text(encoding="utf-8")))
    except OSError:
        return False


def _candidates(config: Config, spec: LayerSpec) -> list[str]:
    candidates = [f"{spec.repository}:{MOVING_TAG}"]
    previous = state.load(config.cache_dir, spec.repository)
    if previous is not None and previous.image not in (spec.image, *candidates):
        candidates.append(previous.image)
    return candidates


def _matching(
    client: RegistryClient, ref: str, key: str, configured: str | None
) -> tuple[str | None, str]:
    """(repo@digest, "") when ref's image was labelled with key, else (None, why not)."""
    host, repo, reference = split_ref(ref)
    if host != client.host:
        return None, f"{ref} is not on {client.host}"
    manifest = client.manifest(repo, reference)
    if manifest is None:
        return None, f"{ref} is not in the registry"
    image = imageconfig.image_manifest(client, repo, manifest, configured)
    if image is None:
        return None, f"{ref} has no {imageconfig.wanted_platform(configured)} image"
    digest = image.digest or _sha256(image.raw)
    config = json.loads(client.blob(repo, str(image.body["config"]["digest"])))
    found = ((config.get("config") or {}).get("Labels") or {}).get(LABEL)
    if found != key:
        built = f"bundle {found}" if found else f"no {LABEL} label"
        return None, f"{ref} has {built}, not {key} (another Ruby, build packages or app)"
    return f"{host}/{repo}@{digest}", ""


def _sha256(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()
