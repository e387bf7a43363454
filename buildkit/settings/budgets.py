"""`budgets:` — size budgets per image, for `imgbuild size check` (issue 5 fills this in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit.yamlsrc import Document

KEYS: dict[str, Any] = {}


@dataclass(frozen=True, kw_only=True)
class Budgets:
    per_image: dict[str, Any] = field(default_factory=dict)


def parse(doc: Document, raw: Any, root: Path) -> Budgets:  # noqa: ARG001
    return Budgets()
