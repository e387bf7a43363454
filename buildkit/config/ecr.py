"""`ecr:` and `tags:` — repository settings imgbuild ensures in Amazon ECR, and the tag policy.

```yaml
ecr:
  repositories: {app: shop/web}      # default <name>-<layer>
  scan_on_push: true
  encryption: AES256                 # or KMS (+ kms_key)
  kms_key: arn:aws:kms:...
  keep_images: 30                    # content-key images kept per repository
  expire_untagged_days: 7
  tags: {team: platform}
tags:
  release_branches: [main]           # pushes from these move `latest` and the branch tag
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit.config import schema
from buildkit.config.yamlsrc import Document
from buildkit.errors import ConfigError

KEYS: dict[str, Any] = {
    "repositories": None,
    "scan_on_push": None,
    "encryption": None,
    "kms_key": None,
    "keep_images": None,
    "expire_untagged_days": None,
    "tags": None,
}
TAG_KEYS: dict[str, Any] = {"release_branches": None}
_REPO = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


@dataclass(frozen=True, kw_only=True)
class EcrSettings:
    repositories: Mapping[str, str] = field(default_factory=dict)  # layer -> repository name
    scan_on_push: bool = True
    encryption: str = "AES256"
    kms_key: str | None = None
    keep_images: int = 30
    expire_untagged_days: int = 7
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TagSettings:
    release_branches: tuple[str, ...] = ("main",)


def _positive(doc: Document, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{doc.where(key)}: '{key}' must be a whole number ≥ 1, not {value!r}")
    return value


def _repositories(doc: Document, raw: Any) -> dict[str, str]:
    repos = schema.str_mapping(doc, "ecr.repositories", raw)
    for layer, name in repos.items():
        if layer not in ("ruby", "base", "app"):
            raise ConfigError(
                f"{doc.where('ecr.repositories')}: unknown layer '{layer}' in ecr.repositories; "
                "use ruby, base or app"
            )
        if not _REPO.match(name) or len(name) > 256:
            raise ConfigError(
                f"{doc.where('ecr.repositories')}: '{name}' is not a valid ECR repository name "
                "(lowercase letters, digits, . _ - and / separators)"
            )
    return repos


def parse(doc: Document, raw: Any, root: Path) -> EcrSettings:  # noqa: ARG001
    raw = raw or {}
    encryption = schema.nonempty_str(doc, "ecr.encryption", raw.get("encryption", "AES256"))
    if encryption not in ("AES256", "KMS", "KMS_DSSE"):
        raise ConfigError(f"{doc.where('ecr.encryption')}: ecr.encryption must be AES256 or KMS")
    return EcrSettings(
        repositories=_repositories(doc, raw.get("repositories", {})),
        scan_on_push=schema.boolean(doc, "ecr.scan_on_push", raw.get("scan_on_push", True)),
        encryption=encryption,
        kms_key=schema.optional_str(doc, "ecr.kms_key", raw.get("kms_key")),
        keep_images=_positive(doc, "ecr.keep_images", raw.get("keep_images", 30)),
        expire_untagged_days=_positive(
            doc, "ecr.expire_untagged_days", raw.get("expire_untagged_days", 7)
        ),
        tags=schema.str_mapping(doc, "ecr.tags", raw.get("tags", {})),
    )


def parse_tags(doc: Document, raw: Any) -> TagSettings:
    raw = raw or {}
    branches = schema.str_list(doc, "tags.release_branches", raw.get("release_branches", ["main"]))
    return TagSettings(release_branches=branches)
