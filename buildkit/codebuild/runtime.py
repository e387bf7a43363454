"""imgbuild inside a CodeBuild build: what started it, which tags fit, where reports go.

CodeBuild describes the build in CODEBUILD_* variables (docs/codebuild.md lists those read here):
`CODEBUILD_WEBHOOK_TRIGGER` is `branch/<name>`, `pr/<number>` or `tag/<name>` for webhook builds;
a build started by hand has only `CODEBUILD_SOURCE_VERSION` (a branch, `pr/N`, a ref or a commit);
source/buildenv.py reads those (the chain's tag policy needs them too).
Release tags (`latest`, the branch tag) move only for a build of the release branch.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from buildkit import fsutil
from buildkit.source.buildenv import commit, environ, in_codebuild, trigger

REPORT_DIR_ENV = "IMGBUILD_REPORT_DIR"
DEFAULT_REPORT_DIR = "imgbuild-reports"
EXPORTS_FILE = "exported.env"
CONTEXT_FILE = "codebuild.env"
LAYERS = ("ruby", "base", "app")
#: The variables a buildspec's `exported-variables` lists (one pair per layer). Not IMGBUILD_<X>
#: alone: IMGBUILD_BASE_IMAGE already means the OS base image to imgbuild (config.ENV_OVERRIDES).
EXPORTED = tuple(
    f"IMGBUILD_RESULT_{layer.upper()}_{what}" for layer in LAYERS for what in ("IMAGE", "DIGEST")
)


def should_move_release_tags(
    release_branches: str | Iterable[str] = ("main",), env: Mapping[str, str] | None = None
) -> bool | None:
    """True for a build of the release branch, False for PRs, tags and other branches, None
    outside CodeBuild (the command line decides there)."""
    if not in_codebuild(env):
        return None
    found = trigger(env)
    branches = {release_branches} if isinstance(release_branches, str) else set(release_branches)
    return found is not None and found.kind == "branch" and found.name in branches


def batch_identifier(env: Mapping[str, str] | None = None) -> str | None:
    return environ(env).get("CODEBUILD_BATCH_BUILD_IDENTIFIER") or None


def batch_layer(env: Mapping[str, str] | None = None) -> str | None:
    """The layer a batch build-graph entry builds (its identifier is the layer name)."""
    ident = batch_identifier(env)
    return ident if ident in LAYERS else None


def report_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where reports go: $IMGBUILD_REPORT_DIR, else imgbuild-reports/ in the source directory."""
    values = environ(env)
    configured = values.get(REPORT_DIR_ENV)
    base = Path(values.get("CODEBUILD_SRC_DIR") or Path.cwd())
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else base / path
    return base / DEFAULT_REPORT_DIR


def context_variables(
    release_branches: str | Iterable[str] = ("main",), env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What a buildspec sources after the preflight: the trigger and the release-tag choice."""
    found = trigger(env)
    move = should_move_release_tags(release_branches, env)
    return {
        "IMGBUILD_TRIGGER": str(found) if found else "",
        "IMGBUILD_COMMIT": commit(env) or "",
        "IMGBUILD_RELEASE_TAGS": "--release-tags" if move else "--no-release-tags",
    }


def describe(
    release_branches: str | Iterable[str] = ("main",), env: Mapping[str, str] | None = None
) -> str:
    """One log line about the build, or about not being in one."""
    values = environ(env)
    if not in_codebuild(values):
        return "not in CodeBuild (CODEBUILD_BUILD_ID unset): the command line decides the tags"
    found = trigger(values)
    head = f" (head {found.head_ref})" if found and found.head_ref else ""
    move = "yes" if should_move_release_tags(release_branches, values) else "no"
    batch = batch_identifier(values)
    return (
        f"CodeBuild build {values['CODEBUILD_BUILD_ID']}: trigger {found or 'unknown'}{head}, "
        f"commit {commit(values) or 'unknown'}"
        + (f", batch entry {batch}" if batch else "")
        + f"; release tags move: {move}"
    )


def exported_variables(result: Mapping[str, Any]) -> dict[str, str]:
    """IMGBUILD_RESULT_<LAYER>_IMAGE/_DIGEST from the --json result of `imgbuild <layer>`."""
    variables = dict.fromkeys(EXPORTED, "")
    for layer in result.get("layers", []):
        prefix = f"IMGBUILD_RESULT_{str(layer.get('name', '')).upper()}"
        if f"{prefix}_IMAGE" in variables:
            variables[f"{prefix}_IMAGE"] = str(layer.get("image") or "")
            variables[f"{prefix}_DIGEST"] = str(layer.get("digest") or "")
    return variables


def shell_lines(variables: Mapping[str, str]) -> str:
    """`export NAME='value'` lines a shell can source."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())


def write_env_file(path: Path, variables: Mapping[str, str]) -> Path:
    fsutil.atomic_write_text(path, shell_lines(variables))
    return path
