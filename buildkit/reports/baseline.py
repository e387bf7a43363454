"""The size baseline the gate compares with: a JSON file committed in the app repo, or the images
under a registry tag (e.g. `latest`, for a CI where only the main branch pushes).

The file is a ratchet: `imgbuild size check --update-baseline` rewrites it only when nothing
regressed, and per image takes the new numbers only when they are not larger, so the allowed
growth never compounds from one change to the next.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit import fsutil
from buildkit.config.budgets import DEFAULT_BASELINE
from buildkit.config.loading import Config
from buildkit.errors import InputError
from buildkit.reports.model import ImageSizes

SCHEMA = "imgbuild.baseline/v1"


@dataclass(frozen=True)
class Baseline:
    source: str  # shown in every message: the file path, or "registry tag latest"
    images: Mapping[str, ImageSizes]


def default_path(config: Config) -> Path:
    return config.budgets.baseline or config.root / DEFAULT_BASELINE


def load(path: Path) -> Baseline | None:
    """The baseline in path; None when the file does not exist."""
    if not path.exists():
        return None
    data = fsutil.read_json(path)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(
            f"{path} is not an imgbuild baseline ({SCHEMA}); restore it from git or delete it "
            "and run `imgbuild size check --update-baseline`"
        )
    try:
        images = {
            str(name): ImageSizes.from_json(entry)
            for name, entry in (data.get("images") or {}).items()
            if isinstance(entry, dict)
        }
        for sizes in images.values():
            for value in (sizes.compressed, sizes.uncompressed):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise TypeError(value)
    except (TypeError, ValueError, AttributeError):
        raise InputError(
            f"{path} is not an imgbuild baseline ({SCHEMA}): malformed image sizes; restore it "
            "from git or delete it and run `imgbuild size check --update-baseline`"
        ) from None
    return Baseline(source=str(path), images=images)


def from_images(source: str, images: Sequence[ImageSizes | None]) -> Baseline:
    return Baseline(source=source, images={i.layer: i for i in images if i is not None})


def ratchet(
    old: Baseline | None, current: Sequence[ImageSizes], metric_of: Mapping[str, str]
) -> tuple[dict[str, ImageSizes], list[str]]:
    """The new baseline images and one line per image saying what happened to it."""
    images = dict(old.images) if old else {}
    lines = []
    for sizes in current:
        metric = metric_of.get(sizes.layer, "compressed")
        before = images.get(sizes.layer)
        now = sizes.metric(metric)
        then = before.metric(metric) if before else None
        if now is None:
            lines.append(f"{sizes.layer}: kept (no {metric} size measured)")
        elif then is None:
            images[sizes.layer] = sizes
            lines.append(f"{sizes.layer}: set to {now} bytes {metric}")
        elif now <= then:
            images[sizes.layer] = sizes
            lines.append(f"{sizes.layer}: {then} → {now} bytes {metric}")
        else:
            lines.append(f"{sizes.layer}: kept at {then} bytes {metric} (grew within budget)")
    return images, lines


def write(path: Path, images: Mapping[str, ImageSizes], commit: str | None) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "updated_at": now,
        "commit": commit,
        "images": {name: sizes.as_json() for name, sizes in sorted(images.items())},
    }
    fsutil.atomic_write_json(path, document)
