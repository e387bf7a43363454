"""Commit, branch and source URL of the app, from CodeBuild's variables or from git itself."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from buildkit import proc
from buildkit.errors import CommandNotFoundError


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    branch: str | None
    source_url: str | None


def _git(directory: Path, *args: str) -> str | None:
    try:
        result = proc.run(["git", "-C", str(directory), *args], check=False, quiet=True, timeout=10)
    except CommandNotFoundError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def strip_credentials(url: str | None) -> str | None:
    """https://user:token@host/x -> https://host/x: no secret from a remote URL into a label."""
    if url is None:
        return None
    return re.sub(r"^(\w+://)[^/@]*@", r"\1", url)


def detect(directory: Path) -> GitInfo:
    env = os.environ
    commit = env.get("CODEBUILD_RESOLVED_SOURCE_VERSION") or _git(directory, "rev-parse", "HEAD")
    trigger = env.get("CODEBUILD_WEBHOOK_TRIGGER", "")
    branch = trigger.removeprefix("branch/") if trigger.startswith("branch/") else None
    branch = branch or _git(directory, "symbolic-ref", "--short", "-q", "HEAD")
    url = env.get("CODEBUILD_SOURCE_REPO_URL") or _git(directory, "remote", "get-url", "origin")
    return GitInfo(commit=commit, branch=branch, source_url=strip_credentials(url))
