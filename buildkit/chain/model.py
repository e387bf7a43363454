"""The chain's model: what a layer is (LayerSpec), what was decided about it (LayerPlan), what
happened to it in a run (LayerOutcome), and what the run was asked to do (RunOptions).

Plain data, no I/O: chain.layers computes specs, chain.plan decides, run.pipeline fills outcomes;
reports, codebuild and the CLI read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from buildkit.applayer import assets as assetsmod
from buildkit.applayer import bulk as bulkmod
from buildkit.applayer import snapshot as deltamod
from buildkit.source.keys import KEY_LENGTH

if TYPE_CHECKING:
    from buildkit.engine.progress import Step

MOVING_TAG = "latest"  # the cache-from source: moved on release builds (tagpolicy)
Status = Literal["up-to-date", "build"]


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """Everything needed to decide about, and build, one layer."""

    name: str
    repository: str  # e.g. 127.0.0.1:5000/hello-base
    key: str
    parent: LayerSpec | None
    dockerfile: Path
    context: Path | None  # None for ruby: its context is assembled at build time
    ignore: tuple[str, ...]  # Dockerfile-specific .dockerignore patterns
    build_args: Mapping[str, str]
    inputs: Mapping[str, str] = field(repr=False)  # what the key covers, for "why rebuild?"
    assets: assetsmod.AssetsSpec | None = None  # app only: its precompiled assets, under bulk
    bulk: bulkmod.BulkSpec | None = None  # app only: the hidden image it is built FROM
    delta: deltamod.DeltaSpec | None = None  # app only: may build on a source snapshot
    # app only: its process types (name, command), `web` (the image's CMD) first; labels each.
    processes: tuple[tuple[str, str], ...] = ()

    @property
    def tag(self) -> str:
        return self.key[:KEY_LENGTH]

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True, kw_only=True)
class LayerPlan:
    spec: LayerSpec
    status: Status
    reasons: tuple[str, ...]
    local_id: str | None  # image id in the daemon, when present
    remote_digest: str | None  # manifest digest in the registry, when present

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.spec.name,
            "image": self.spec.image,
            "key": self.spec.key,
            "status": self.status,
            "reasons": list(self.reasons),
        }


@dataclass(kw_only=True)
class LayerOutcome:
    """What happened to one layer in this run (mutable while the run fills it in)."""

    plan: LayerPlan
    built: bool = False
    pushed: bool = False
    pulled: bool = False
    digest: str | None = None
    image_id: str | None = None
    build_seconds: float = 0.0
    push_seconds: float = 0.0
    steps: tuple[Step, ...] = field(default_factory=tuple)
    tags: list[str] = field(default_factory=list)  # tags written to the registry in this run
    forced: bool = False  # rebuilt by --no-cache although its key was already built
    snapshot: dict[str, Any] | None = None  # app.delta: the source snapshot it was built on
    # How a built layer was made: "buildkit", or "native" (the app assembled in the registry,
    # run.native); path_reason says why a pushed app was not assembled natively.
    path: str | None = None
    path_reason: str | None = None
    # diff_id -> uncompressed bytes of layers this run wrote itself (the native path), so the
    # report counts them without reading the blobs back.
    layer_sizes: dict[str, int] = field(default_factory=dict)
    # digest -> (media type, bytes) of the manifest and config the native path pushed, so the
    # report reads them from here, not back from the registry (issue 17, P2-ONESHOT).
    written: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        spec = self.plan.spec
        return {
            "name": spec.name,
            "image": spec.image,
            "key": spec.key,
            "digest": self.digest,
            "id": self.image_id,
            "built": self.built,
            "pushed": self.pushed,
            "reasons": list(self.plan.reasons),
            "seconds": round(self.build_seconds, 3),
            "push_seconds": round(self.push_seconds, 3),
            "tags": list(self.tags),
            "snapshot": self.snapshot,
            "path": self.path,
            "path_reason": self.path_reason,
            "steps": [
                {"name": s.name, "seconds": round(s.seconds, 3), "cached": s.cached}
                for s in self.steps
            ],
        }


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    target: str = "app"
    push: bool = False
    no_cache: bool = False
    release_tags: bool | None = None  # None: decided by branch / trigger (tagpolicy)
    content_tags_only: bool = False  # no git-/pr-/branch tags either (verify's test variant)
    # Without --push the target ends up in the daemon (pulled when only the registry has it);
    # run.fleet says False for a layer under the apps' targets, which no one needs locally.
    local_target: bool = True
