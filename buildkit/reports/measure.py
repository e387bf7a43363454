"""Measure the chain's images: from the registry (manifest + config) when they are there, from the
local daemon otherwise, and attribute every layer to a level of the chain.

Attribution works on diff_ids: the app image's layers start with the base image's, which start
with the ruby image's, which start with the OS base image's. Uncompressed layer sizes are counted
from the layer tarballs (layerfiles.py), cached by diff_id and seeded from the baseline and the
history, so a blob is read once per machine at most, and only for layers nobody measured yet.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit import cachedir, fsutil, log
from buildkit.applayer import imageconfig
from buildkit.config.loading import Config
from buildkit.engine import docker_api, reference
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.errors import ImgbuildError, InvalidReferenceError
from buildkit.reports import sizesref
from buildkit.reports.layerfiles import LayerStore
from buildkit.reports.model import CHAIN, ImageSizes, Layer, split
from buildkit.run.access import RegistryAccess

# History entries of a daemon-only image that are layers even when empty (BuildKit and legacy).
_LAYER_ENTRY = re.compile(
    r"^(?:RUN|COPY|ADD|WORKDIR)\b|^/bin/sh -c (?!#\(nop\))|^/bin/sh -c #\(nop\) (?:COPY|ADD)\b"
)


@dataclass(frozen=True, kw_only=True)
class Target:
    """An image to measure; `local` prefers the daemon (built here, not pushed)."""

    layer: str
    image: str
    key: str = ""
    local: bool = False
    digest: str | None = None  # its manifest digest in the registry, when the caller knows it
    daemon: bool = True  # False: only the registry may answer (a baseline tag)


@dataclass(kw_only=True)
class _Facts:
    """One image as the registry or the daemon describes it, before attribution."""

    image: str
    digest: str | None
    source: str
    config_digest: str | None
    diff_ids: list[str]
    digests: list[str | None]
    compressed: list[int | None]
    uncompressed: list[int | None]
    created_by: list[str]
    total_uncompressed: int | None = None


# A manifest never changes under its digest, so what it says about an image (config, layers,
# history) is cached by digest: a run that built nothing measures its chain with one HEAD per
# image instead of a manifest and a config GET each.
_FACTS_FIELDS = ("config_digest", "diff_ids", "digests", "compressed", "created_by")


def _cached_facts(path: Path, ref: str, digest: str) -> _Facts | None:
    data = fsutil.read_json(path)
    if not isinstance(data, dict) or any(k not in data for k in _FACTS_FIELDS):
        return None
    layers = len(data["diff_ids"])
    return _Facts(
        image=ref,
        digest=digest,
        source="registry",
        uncompressed=[None] * layers,
        **{k: data[k] for k in _FACTS_FIELDS},
    )


class Measurer:
    """Measures images of one config's chain. `config` must be the one `open_registry` resolved
    (an ECR registry named by its host), and `access` its credentials for that host."""

    def __init__(
        self,
        config: Config,
        store: LayerStore | None = None,
        *,
        access: RegistryAccess | None = None,
        read_blobs: bool = True,
        publish: bool = False,
        known: Mapping[tuple[str, str], tuple[str, bytes]] | None = None,
    ) -> None:
        """`known`: (repository, digest) -> (media type, bytes) the run pushed itself, read from
        here instead of the registry (RegistryClient.remember)."""
        self.config = config
        self.access = access
        self.known = dict(known or {})
        self._os: tuple[list[str] | None] | None = None  # the OS base image, asked once
        self.store = store if store is not None else LayerStore(config.cache_dir)
        self.read_blobs = read_blobs
        self.publish = publish  # store sizes it had to read blobs for (sizesref)
        self._clients: dict[str, RegistryClient] = {}

    # -- where an image lives

    def locate(self, ref: str) -> tuple[RegistryClient, str, str] | None:
        """(client, repository, tag) when ref names our registry or a loopback one."""
        try:
            host, repo, tag = split_ref(ref)
        except InvalidReferenceError:
            return None
        if host != _registry_host(self.config.registry) and not reference.is_loopback(host):
            return None
        if host not in self._clients:
            own = self.access is not None and self.access.host == host
            client = self.access.client() if own and self.access else RegistryClient(host)
            for (repo_known, digest), (media_type, raw) in self.known.items() if own else ():
                client.remember(repo_known, digest, media_type, raw)
            self._clients[host] = client
        return self._clients[host], repo, tag

    def _from_registry(self, ref: str, known_digest: str | None = None) -> _Facts | None:
        located = self.locate(ref)
        if located is None:
            return None
        client, repo, tag = located
        digest = known_digest or client.exists(repo, tag)
        if digest is None:
            return None
        cache = cachedir.manifest_facts(self.config.cache_dir, digest, self._wanted_platform())
        cached = _cached_facts(cache, ref, digest) if digest.startswith("sha256:") else None
        if cached is not None:
            return cached
        facts = self._fetch_facts(client, repo, tag if digest == "unknown" else digest, ref)
        if facts is not None and digest.startswith("sha256:"):
            known = dataclasses.asdict(facts)
            fsutil.atomic_write_json(cache, {k: known[k] for k in _FACTS_FIELDS})
        return facts

    def _fetch_facts(
        self, client: RegistryClient, repo: str, reference: str, ref: str
    ) -> _Facts | None:
        manifest = client.manifest(repo, reference)
        if manifest is None:
            return None
        image = imageconfig.image_manifest(client, repo, manifest, self.config.platform)
        if image is None:
            return None
        body = image.body
        config = json.loads(client.blob(repo, str(body["config"]["digest"])))
        layers = list(body.get("layers") or ())
        diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or ()]
        if len(diff_ids) != len(layers):
            log.warn(f"{ref}: manifest and config disagree on the layer count; sizes skipped")
            return None
        history = list(config.get("history") or ())
        created = [str(h.get("created_by", "")) for h in history if not h.get("empty_layer")]
        return _Facts(
            image=ref,
            digest=manifest.digest or None,
            source="registry",
            config_digest=str(body["config"]["digest"]),
            diff_ids=diff_ids,
            digests=[str(layer["digest"]) for layer in layers],
            compressed=[int(layer["size"]) for layer in layers],
            uncompressed=[None] * len(layers),
            created_by=created if len(created) == len(layers) else [""] * len(layers),
        )

    def _wanted_platform(self) -> str:
        return imageconfig.wanted_platform(self.config.platform)

    def _from_daemon(self, ref: str) -> _Facts | None:
        try:
            if docker_api.local_image(ref) is None:
                return None
            api = docker_api.client().api
            attrs = api.inspect_image(ref)
            rows = list(reversed(api.history(ref)))
        except ImgbuildError:
            return None
        diff_ids = [str(d) for d in (attrs.get("RootFS") or {}).get("Layers") or ()]
        entries = [row for row in rows if _is_layer_row(row)]
        aligned = len(entries) == len(diff_ids)
        return _Facts(
            image=ref,
            digest=None,
            source="daemon",
            config_digest=str(attrs["Id"]),
            diff_ids=diff_ids,
            digests=[None] * len(diff_ids),
            compressed=[None] * len(diff_ids),
            uncompressed=[int(row.get("Size") or 0) for row in entries]
            if aligned
            else [None] * len(diff_ids),
            created_by=[str(row.get("CreatedBy", "")) for row in entries]
            if aligned
            else [""] * len(diff_ids),
            total_uncompressed=int(attrs.get("Size") or 0),
        )

    def facts(
        self, ref: str, *, local: bool = False, digest: str | None = None, daemon: bool = True
    ) -> _Facts | None:
        if local:
            return self._from_daemon(ref) or self._from_registry(ref)
        found = self._from_registry(ref, digest)
        return found if found is not None or not daemon else self._from_daemon(ref)

    # -- uncompressed sizes of registry images

    def _fill(self, facts: _Facts) -> None:
        """Uncompressed layer sizes, always counted from the layer tarballs (cached by diff_id).

        The daemon is not asked for registry images: it counts a layer it built itself without
        its symlinks (moby's naive diff) but a layer it pulled with them, so its numbers depend on
        how the layer got there. A daemon-only image keeps the daemon's numbers for the layers
        the registry does not have (noted in the report)."""
        if facts.source != "registry":
            for i, diff_id in enumerate(facts.diff_ids):
                exact = self.store.size(diff_id)
                facts.uncompressed[i] = exact if exact is not None else facts.uncompressed[i]
            return
        located = self.locate(facts.image)
        image_digest = facts.digest or ""
        if located and self._unmeasured(facts):
            self.store.seed(sizesref.load(located[0], located[1], image_digest).items())
        read = False
        for i, diff_id in enumerate(facts.diff_ids):
            digest = facts.digests[i]
            if self.store.size(diff_id) is None and self.read_blobs and located and digest:
                read |= self.store.files(located[0], located[1], digest, diff_id) is not None
            facts.uncompressed[i] = self.store.size(diff_id)
        if read and self.publish and located and not self._unmeasured(facts):
            sizes = {d: self.store.size(d) or 0 for d in facts.diff_ids}
            sizesref.store(located[0], located[1], image_digest, sizes)

    def _unmeasured(self, facts: _Facts) -> bool:
        return any(self.store.size(diff_id) is None for diff_id in facts.diff_ids)

    # -- the chain

    def os_diff_ids(self) -> list[str] | None:
        """diff_ids of the OS base image (config base_image), from the registry or the daemon;
        asked once per Measurer (a report measures the baseline and the chain against it)."""
        if self._os is None:
            found = self.facts(self.config.base_image)
            self._os = (found.diff_ids if found else None,)
        return self._os[0]

    def measure(self, targets: Sequence[Target]) -> list[ImageSizes | None]:
        """Measure each target (in chain order: ruby, base, app); None for an image not found."""
        found = [
            self.facts(t.image, local=t.local, digest=t.digest, daemon=t.daemon) for t in targets
        ]
        for each in sorted((f for f in found if f), key=lambda f: f.source != "registry"):
            self._fill(each)  # registry images first: their tar sizes serve the local-only ones
        self.store.save()
        if not any(found):
            return [None] * len(targets)  # nothing to attribute to the OS image's layers
        levels: list[tuple[str, list[str] | None]] = [("os", self.os_diff_ids())]
        results: list[ImageSizes | None] = []
        for target, facts in zip(targets, found, strict=True):
            if facts is None:
                results.append(None)
                levels.append((target.layer, None))
                continue
            results.append(_sizes(target, facts, levels))
            levels.append((target.layer, facts.diff_ids))
        return results


def _registry_host(registry: str | None) -> str | None:
    """The host of the configured registry; None without one (or `ecr`, before it resolves)."""
    if not registry:
        return None
    try:
        return reference.split_registry(registry)[0]
    except InvalidReferenceError:
        return None


def _is_layer_row(row: Mapping[str, Any]) -> bool:
    return int(row.get("Size") or 0) > 0 or bool(_LAYER_ENTRY.match(str(row.get("CreatedBy", ""))))


def _attribute(
    target: Target, facts: _Facts, levels: Sequence[tuple[str, list[str] | None]]
) -> tuple[list[str], list[str]]:
    """Chain level of each layer, and notes on the levels that could not be told apart."""
    chains = [target.layer] * len(facts.diff_ids)
    notes = []
    start = 0
    for name, ids in levels:
        below = CHAIN[CHAIN.index(name) + 1] if name in CHAIN[:-1] else target.layer
        if ids is None:
            notes.append(f"{name} layers not identified; counted in {below}")
            continue
        if facts.diff_ids[: len(ids)] != ids:
            notes.append(f"does not start with the {name} image's layers; counted in {below}")
            continue
        for i in range(start, len(ids)):
            chains[i] = name
        start = max(start, len(ids))
    return chains, notes


def _sizes(
    target: Target, facts: _Facts, levels: Sequence[tuple[str, list[str] | None]]
) -> ImageSizes:
    chains, notes = _attribute(target, facts, levels)
    layers = tuple(
        Layer(
            digest=facts.digests[i],
            diff_id=facts.diff_ids[i],
            compressed=facts.compressed[i],
            uncompressed=facts.uncompressed[i],
            chain=chains[i],
            created_by=facts.created_by[i],
        )
        for i in range(len(facts.diff_ids))
    )
    compressed = None if facts.source != "registry" else sum(c or 0 for c in facts.compressed)
    uncompressed = facts.total_uncompressed
    if all(u is not None for u in facts.uncompressed):
        uncompressed = sum(u or 0 for u in facts.uncompressed)
    if facts.source != "registry":
        notes.append(
            "not in the registry: compressed size unknown (push to measure it); the uncompressed "
            "size of its unpushed layers is the local daemon's count"
        )
    return ImageSizes(
        layer=target.layer,
        image=target.image,
        key=target.key,
        digest=facts.digest,
        source=facts.source,
        compressed=compressed,
        uncompressed=uncompressed,
        layers=layers,
        chain=split(layers),
        notes=tuple(notes),
    )
