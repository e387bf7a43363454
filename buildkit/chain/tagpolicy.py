"""Which tags each image gets.

- every image: its content key (immutable);
- the app also: `git-<sha7>`, `git-<sha40>` (immutable) and a git tag name when building one;
- moving tags, written only after every layer's content tag is in the registry:
  `latest` and the branch name on release branches (default: main) for every layer;
  `pr-<n>` (pull-request builds) or `branch-<name>` (other branches) for the app.
Release tags are skipped with --no-release-tags, on pull requests and on non-release branches.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from buildkit.config.loading import Config
from buildkit.source import buildenv
from buildkit.source.gitinfo import GitInfo


@dataclass(frozen=True, kw_only=True)
class TagPolicy:
    release: bool
    app_tags: tuple[str, ...]  # immutable extra tags of the app image
    moving: tuple[str, ...]  # moved on every layer
    app_moving: tuple[str, ...]  # moved on the app only

    def moving_for(self, layer: str) -> tuple[str, ...]:
        return self.moving + (self.app_moving if layer == "app" else ())


def sanitize(name: str) -> str:
    """A git ref as a valid image tag: [A-Za-z0-9_.-], at most 128 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "unnamed"
    return cleaned[:128]


def _trigger() -> tuple[str, str] | None:
    found = buildenv.trigger()  # inside CodeBuild: webhook trigger or a by-hand source version
    if found is not None and found.kind in ("pr", "branch", "tag"):
        return found.kind, found.name
    trigger = os.environ.get("CODEBUILD_WEBHOOK_TRIGGER", "")
    kind, _, name = trigger.partition("/")
    return (kind, name) if kind in ("pr", "branch", "tag") and name else None


def make(config: Config, git: GitInfo, release: bool | None = None) -> TagPolicy:
    trigger = _trigger()
    app_tags: list[str] = []
    if git.commit:
        app_tags += [f"git-{git.commit[:7]}", f"git-{git.commit}"]
    if trigger and trigger[0] == "tag":
        app_tags.append(sanitize(trigger[1]))
    app_moving: list[str] = []
    if trigger and trigger[0] == "pr":
        app_moving.append(f"pr-{sanitize(trigger[1])}")
        is_release = False
    elif git.branch and git.branch not in config.tags.release_branches:
        app_moving.append(f"branch-{sanitize(git.branch)}")
        is_release = False
    else:
        is_release = not (trigger and trigger[0] == "tag")
    if release is not None:
        is_release = release and not (trigger and trigger[0] == "pr")
    moving = ["latest"] if is_release else []
    if is_release and git.branch in config.tags.release_branches:
        moving.append(sanitize(git.branch or ""))
    return TagPolicy(
        release=is_release,
        app_tags=tuple(app_tags),
        moving=tuple(moving),
        app_moving=tuple(app_moving),
    )
