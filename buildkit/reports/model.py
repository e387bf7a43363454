"""What a report knows about one image's size, and its JSON form (docs/reports.md).

Two metrics, always named, never mixed:
* `compressed_bytes`: the sum of the registry manifest's `layers[].size`, what a node downloads
  (ECR's `imageSizeInBytes` is the same sum); None when the image is not in the registry.
* `uncompressed_bytes`: what the node unpacks, counted from the layer tarballs like the overlay2
  store counts a pulled layer (see layerfiles.py).
Each layer of an image belongs to one level of the chain: the OS base image, Ruby, the base layer
(OS packages + gems) or the app layer (source); `chain` sums both metrics per level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CHAIN = ("os", "ruby", "base", "app")
CHAIN_LABELS = {
    "os": "OS base image",
    "ruby": "Ruby",
    "base": "OS packages + gems",
    "app": "app source",
}
METRIC_LABELS = {
    "compressed": "compressed (registry, what a node downloads)",
    "uncompressed": "uncompressed (what a node unpacks)",
}


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


@dataclass(frozen=True, kw_only=True)
class Layer:
    digest: str | None  # registry blob digest (compressed); None when only the daemon has it
    diff_id: str | None  # digest of the uncompressed tar
    compressed: int | None
    uncompressed: int | None
    chain: str
    created_by: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "diff_id": self.diff_id,
            "compressed_bytes": self.compressed,
            "uncompressed_bytes": self.uncompressed,
            "chain": self.chain,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layer:
        return cls(
            digest=data.get("digest"),
            diff_id=data.get("diff_id"),
            compressed=data.get("compressed_bytes"),
            uncompressed=data.get("uncompressed_bytes"),
            chain=str(data.get("chain", "")),
            created_by=str(data.get("created_by", "")),
        )


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One chain level's share of an image."""

    compressed: int | None
    uncompressed: int | None
    layers: int

    def metric(self, name: str) -> int | None:
        return self.compressed if name == "compressed" else self.uncompressed

    def as_json(self) -> dict[str, Any]:
        return {
            "compressed_bytes": self.compressed,
            "uncompressed_bytes": self.uncompressed,
            "layers": self.layers,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        return cls(
            compressed=data.get("compressed_bytes"),
            uncompressed=data.get("uncompressed_bytes"),
            layers=int(data.get("layers", 0)),
        )


def split(layers: tuple[Layer, ...]) -> dict[str, Segment]:
    """Sum the layers per chain level, in chain order."""
    result = {}
    for level in CHAIN:
        mine = [layer for layer in layers if layer.chain == level]
        if mine:
            result[level] = Segment(
                compressed=_sum([layer.compressed for layer in mine]),
                uncompressed=_sum([layer.uncompressed for layer in mine]),
                layers=len(mine),
            )
    return result


@dataclass(frozen=True, kw_only=True)
class ImageSizes:
    layer: str  # which image of the chain: ruby, base or app
    image: str
    key: str
    digest: str | None  # registry manifest digest
    source: str  # "registry" or "daemon": where the numbers were read
    compressed: int | None
    uncompressed: int | None
    layers: tuple[Layer, ...] = ()
    chain: Mapping[str, Segment] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def metric(self, name: str) -> int | None:
        return self.compressed if name == "compressed" else self.uncompressed

    @property
    def layer_digests(self) -> dict[str, int]:
        """Registry blob digest -> compressed size, for pull/push deltas."""
        return {
            layer.digest: layer.compressed or 0 for layer in self.layers if layer.digest is not None
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "image": self.image,
            "key": self.key,
            "digest": self.digest,
            "source": self.source,
            "compressed_bytes": self.compressed,
            "uncompressed_bytes": self.uncompressed,
            "layer_count": len(self.layers),
            "chain": {name: segment.as_json() for name, segment in self.chain.items()},
            "layers": [layer.as_json() for layer in self.layers],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageSizes:
        return cls(
            layer=str(data.get("layer", "")),
            image=str(data.get("image", "")),
            key=str(data.get("key", "")),
            digest=data.get("digest"),
            source=str(data.get("source", "")),
            compressed=data.get("compressed_bytes"),
            uncompressed=data.get("uncompressed_bytes"),
            layers=tuple(Layer.from_json(item) for item in data.get("layers") or ()),
            chain={
                str(name): Segment.from_json(item)
                for name, item in (data.get("chain") or {}).items()
            },
            notes=tuple(str(note) for note in data.get("notes") or ()),
        )
