"""Commit, branch and source URL of the app, from CodeBuild's variables or from git itself."""

from __future__ import annotations

import functools
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


_VARIABLES = (
    "CODEBUILD_RESOLVED_SOURCE_VERSION",
    "CODEBUILD_WEBHOOK_TRIGGER",
    "CODEBUILD_SOURCE_REPO_URL",
)


def detect(directory: Path) -> GitInfo:
    """The app's commit, branch and URL. Asked of git once per process, which is one command
    (a one-shot run, or a server's worker): a run needs them for its labels and again for its
    report, three git processes each time (~15 ms of a no-op)."""
    return _detect(str(directory), tuple(os.environ.get(name, "") for name in _VARIABLES))


@functools.lru_cache(maxsize=8)
def _detect(directory: str, variables: tuple[str, ...]) -> GitInfo:
    resolved, trigger, repo_url = variables
    branch = trigger.removeprefix("branch/") if trigger.startswith("branch/") else None
    asks = {
        "commit": () if resolved else ("rev-parse", "HEAD"),
        "branch": () if branch else ("symbolic-ref", "--short", "-q", "HEAD"),
        "url": () if repo_url else ("remote", "get-url", "origin"),
    }
    answers = _git_side_by_side(Path(directory), {k: v for k, v in asks.items() if v})
    return GitInfo(
        commit=resolved or answers.get("commit"),
        branch=branch or answers.get("branch"),
        source_url=strip_credentials(repo_url or answers.get("url")),
    )


def _git_side_by_side(directory: Path, asks: dict[str, tuple[str, ...]]) -> dict[str, str | None]:
    """The answers of independent git commands, run at once: each is mostly process start-up
    (three in a row were ~10 ms of a one-shot run: issue 17, P2-ONESHOT)."""
    from concurrent.futures import ThreadPoolExecutor  # loaded by hashing already

    if len(asks) < 2:
        return {name: _git(directory, *args) for name, args in asks.items()}
    with ThreadPoolExecutor(max_workers=len(asks), thread_name_prefix="imgbuild-git") as pool:
        futures = {name: pool.submit(_git, directory, *args) for name, args in asks.items()}
        return {name: future.result() for name, future in futures.items()}


def source_epoch(directory: Path) -> int:
    """The time a reproducible build stamps on what it writes: SOURCE_DATE_EPOCH when set (the
    reproducible-builds convention), else the commit time of HEAD, else 0. Never "now": two
    machines building one commit must write the same bytes."""
    given = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if given.isdigit():
        return int(given)
    return _commit_time(str(directory))


@functools.lru_cache(maxsize=8)
def _commit_time(directory: str) -> int:
    """Once per process, as `detect`: a native app push stamps its labels and its layer with it
    (two git processes became one: issue 17, P2-ONESHOT)."""
    stamp = _git(Path(directory), "log", "-1", "--format=%ct")
    return int(stamp) if stamp and stamp.isdigit() else 0
