"""`imgbuild codebuild render`: the pull-request, main-branch and batch buildspecs (version 0.2).

All three install imgbuild, run the preflight, set DOCKER_BUILDKIT=1 and publish the size check's
JUnit file through a `reports` group. Only the main buildspec moves release tags; the batch one
lets the preflight decide from the webhook trigger. Paths in a buildspec are relative to the
repository root, which is where CodeBuild runs the commands.

No command waits for, logs in to or asks a Docker daemon (`docker info`, `docker login`, a
dockerd wait): imgbuild authenticates to the registry itself and connects to the daemon only
when it must build with BuildKit, so a source-only build, assembled in the registry
(run/native.py), runs the same buildspec in a project without privileged mode.

With a `verify:` section the app is built with `--verify` (verified before anything is pushed)
and a second `reports` group publishes verify's JUnit; without one the output is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from buildkit import fsutil
from buildkit.codebuild import batchgraph, runtime
from buildkit.codebuild.batchgraph import VERIFY_ENV
from buildkit.codebuild.repo import config_in_repo, source_root
from buildkit.config.loading import Config

KINDS = ("pr", "main", "batch")
SIZE_REPORT = "size.xml"
#: Where `imgbuild verify` writes its JUnit under $IMGBUILD_REPORT_DIR (cli.verify.default_out_dir).
VERIFY_REPORT_DIR = f"{runtime.DEFAULT_REPORT_DIR}/verify"
TESTS_REPORT = "tests"
_DESCRIPTIONS = {
    "pr": "pull requests: build and push the chain without moving release tags, check sizes",
    "main": "the release branch: build and push the chain, move the release tags",
    "batch": "a batch build: ruby → base → app as dependent builds sharing the registry",
}


@dataclass(frozen=True, kw_only=True)
class Rendered:
    kind: str
    filename: str
    text: str


def filename(kind: str) -> str:
    return f"{kind}.yml"


def path_in_repo(config: Config, kind: str) -> str:
    """What a project's source.buildspec points at."""
    return f"{config.codebuild.buildspec_dir}/{filename(kind)}"


def tests_report_key(config: Config) -> str:
    """The `reports` key of verify's JUnit: `tests`, unless the size group already took it."""
    taken = config.codebuild.report_group == TESTS_REPORT
    return f"verify-{TESTS_REPORT}" if taken else TESTS_REPORT


def report_keys(config: Config) -> dict[str, str]:
    """The buildspec's `reports` keys by what they publish: "size", and "tests" with verify."""
    keys = {"size": config.codebuild.report_group}
    if config.verify.declared:
        keys["tests"] = tests_report_key(config)
    return keys


#: How every command names its app: the config, and for an app of an `apps:` config its key
#: (IMGBUILD_APP, set by the buildspec or the batch entry; unset, the flag expands to nothing).
_SELECT = '-c "$IMGBUILD_CONFIG" ${IMGBUILD_APP:+--app "$IMGBUILD_APP"}'


def _imgbuild(*args: str) -> str:
    return " ".join(("imgbuild", _SELECT, *args))


def _build(kind: str, verify: bool) -> str:
    """The build command; with verify it builds, verifies, and pushes only a verified image."""
    if kind == "batch":
        # Unquoted on purpose: it expands to nothing on the ruby and base entries.
        flag = f"${{{VERIFY_ENV}:+--verify}}"
        args = ['"$IMGBUILD_LAYER" --push "$IMGBUILD_RELEASE_TAGS"']
    else:
        flag = "--verify"
        args = ["app --push"]
    if verify:
        args.append(flag)
    if kind == "pr":
        args.append("--no-release-tags")
    return _imgbuild(*args, '--json > "$IMGBUILD_REPORT_DIR/build.json"')


def _build_commands(kind: str, verify: bool) -> list[str]:
    return [
        _build(kind, verify),
        _imgbuild('codebuild exports "$IMGBUILD_REPORT_DIR/build.json"'),
        f'. "$IMGBUILD_REPORT_DIR/{runtime.EXPORTS_FILE}"',
    ]


def _size_check(kind: str) -> str:
    check = _imgbuild(f'size check --junit "$IMGBUILD_REPORT_DIR/{SIZE_REPORT}"')
    return f'if [ "$IMGBUILD_LAYER" = app ]; then {check}; fi' if kind == "batch" else check


def document(config: Config, kind: str, others: Sequence[Config] = ()) -> dict[str, Any]:
    """One buildspec as plain data (what `render` dumps as YAML). `others`: more apps' configs
    whose chains join the batch build-graph (batchgraph.py); the other kinds build config's."""
    settings = config.codebuild
    doc: dict[str, Any] = {"version": 0.2}
    configs = (config, *others) if kind == "batch" else (config,)
    verify = any(c.verify.declared for c in configs)
    if kind == "batch":
        doc["batch"] = batchgraph.render_batch_graph(configs)
    doc["env"] = {
        "shell": "bash",
        "variables": {
            "DOCKER_BUILDKIT": "1",
            "IMGBUILD_CONFIG": config_in_repo(config),
            **({batchgraph.APP_ENV: config.app_key} if config.app_key and kind != "batch" else {}),
            runtime.REPORT_DIR_ENV: runtime.DEFAULT_REPORT_DIR,
        },
        "exported-variables": list(runtime.EXPORTED),
    }
    doc["phases"] = {
        "install": {"commands": list(settings.install)},
        "pre_build": {
            "commands": [
                'mkdir -p "$IMGBUILD_REPORT_DIR"',
                _imgbuild("codebuild preflight --push"),
                f'. "$IMGBUILD_REPORT_DIR/{runtime.CONTEXT_FILE}"',
            ]
        },
        "build": {"on-failure": "ABORT", "commands": _build_commands(kind, verify)},
        "post_build": {
            "commands": [_size_check(kind)],
            "finally": ['ls -l "$IMGBUILD_REPORT_DIR"'],
        },
    }
    doc["reports"] = _reports(config, verify)
    return doc


def _reports(config: Config, verify: bool) -> dict[str, Any]:
    keys = report_keys(config)
    if verify and "tests" not in keys:  # another app of the batch verifies
        keys["tests"] = tests_report_key(config)
    reports: dict[str, Any] = {
        keys["size"]: {
            "files": [SIZE_REPORT],
            "base-directory": runtime.DEFAULT_REPORT_DIR,
            "file-format": "JUNITXML",
        }
    }
    if "tests" in keys:
        # Keep paths: the app's JUnit files are copied out under tests/ with their own names.
        reports[keys["tests"]] = {
            "files": ["**/*.xml"],
            "base-directory": VERIFY_REPORT_DIR,
            "file-format": "JUNITXML",
            "discard-paths": "no",
        }
    return reports


def _header(config: Config, kind: str) -> str:
    source = config_in_repo(config)
    return (
        f"# Generated by `imgbuild codebuild render` from {source}: do not edit by hand.\n"
        f"# Change the config and run `imgbuild -c {source} codebuild render` again.\n"
        f"# CodeBuild buildspec for {_DESCRIPTIONS[kind]}.\n"
    )


def render(
    config: Config, others: Sequence[Config] = (), kinds: Sequence[str] = KINDS
) -> list[Rendered]:
    rendered = []
    for kind in kinds:
        body = yaml.safe_dump(
            document(config, kind, others), sort_keys=False, default_flow_style=False, width=1000
        )
        rendered.append(
            Rendered(kind=kind, filename=filename(kind), text=_header(config, kind) + body)
        )
    return rendered


def default_out(config: Config) -> Path:
    return source_root(config) / config.codebuild.buildspec_dir


def write(
    config: Config, out: Path, others: Sequence[Config] = (), kinds: Sequence[str] = KINDS
) -> list[Path]:
    """Write the buildspecs into out (atomically, one file at a time)."""
    written = []
    for item in render(config, others, kinds):
        path = out / item.filename
        fsutil.atomic_write_text(path, item.text)
        written.append(path)
    return written
