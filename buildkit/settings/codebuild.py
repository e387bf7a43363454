"""`codebuild:` — CodeBuild projects, webhooks and buildspecs (issue 4 fills this in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit.yamlsrc import Document

KEYS: dict[str, Any] = {}


@dataclass(frozen=True, kw_only=True)
class CodeBuildSettings:
    enabled: bool = False


def parse(doc: Document, raw: Any, root: Path) -> CodeBuildSettings:  # noqa: ARG001
    return CodeBuildSettings()
