"""What the CI build environment (AWS CodeBuild's CODEBUILD_* variables) says about this build.

`CODEBUILD_WEBHOOK_TRIGGER` is `branch/<name>`, `pr/<number>` or `tag/<name>` for webhook builds;
a build started by hand has only `CODEBUILD_SOURCE_VERSION` (a branch, `pr/N`, a ref or a commit).
The chain's tag policy (chain.tagpolicy) and the CodeBuild runtime (codebuild.runtime) read it;
docs/codebuild.md lists the variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["branch", "pr", "tag", "commit"]
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Trigger:
    """What this build is for: kind branch/pr/tag/commit and its name (branch, PR number, tag)."""

    kind: Kind
    name: str
    head_ref: str | None = None  # the PR's (or pushed) branch, without refs/heads/

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def in_codebuild(env: Mapping[str, str] | None = None) -> bool:
    return bool(environ(env).get("CODEBUILD_BUILD_ID"))


def _short_ref(ref: str | None) -> str | None:
    if not ref:
        return None
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


def trigger(env: Mapping[str, str] | None = None) -> Trigger | None:
    """The webhook trigger, else what a by-hand build's source version says; None elsewhere."""
    values = environ(env)
    if not in_codebuild(values):
        return None
    head = _short_ref(values.get("CODEBUILD_WEBHOOK_HEAD_REF"))
    webhook = values.get("CODEBUILD_WEBHOOK_TRIGGER", "")
    kind, _, name = webhook.partition("/")
    if kind in ("branch", "pr", "tag") and name:
        return Trigger(kind, name, head)  # type: ignore[arg-type]  # narrowed by the check
    return _from_source_version(values.get("CODEBUILD_SOURCE_VERSION", ""), head)


def _from_source_version(version: str, head: str | None) -> Trigger | None:
    if version.startswith("pr/"):
        return Trigger("pr", version[3:], head)
    if version.startswith("refs/tags/"):
        return Trigger("tag", version.removeprefix("refs/tags/"), head)
    if version.startswith("refs/heads/"):
        return Trigger("branch", version.removeprefix("refs/heads/"), head)
    if _COMMIT.match(version):
        return Trigger("commit", version, head)
    return Trigger("branch", version, head) if version else None


def commit(env: Mapping[str, str] | None = None) -> str | None:
    values = environ(env)
    resolved = values.get("CODEBUILD_RESOLVED_SOURCE_VERSION", "")
    return resolved if _COMMIT.match(resolved) else None
