"""`imgbuild codebuild render|plan|apply`, and `preflight|exports` for use inside a buildspec.

These commands have no -c/--registry of their own: they take the global ones
(`imgbuild -c FILE codebuild render`).
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from buildkit import log
from buildkit.cli.options import JsonOpt, resolve, resolve_all
from buildkit.config import loading as configmod
from buildkit.errors import ImgbuildError, InputError

codebuild_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="AWS CodeBuild: generated buildspecs and projects, and helpers for inside a build.",
)


class Format(StrEnum):
    buildspec = "buildspec"
    cloudformation = "cloudformation"


@codebuild_app.command()
def render(
    ctx: typer.Context,
    fmt: Annotated[
        Format,
        typer.Option("--format", help="buildspec: buildspecs/*.yml; cloudformation: a template."),
    ] = Format.buildspec,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to write to (default: codebuild.buildspec_dir)."),
    ] = None,
    batch_configs: Annotated[
        list[str] | None,
        typer.Option(
            "--batch-config",
            help="Another app's config whose chain joins batch.yml's build-graph (repeatable).",
        ),
    ] = None,
) -> None:
    """Write the pull-request, main and batch buildspecs (or a CloudFormation template)."""
    from buildkit.codebuild import buildspec, cloudformation

    apps = resolve_all(ctx)
    config, others = apps[0], [*apps[1:]]
    for other in batch_configs or []:
        others += resolve_all(ctx, config=other)
    target = out if out is not None else buildspec.default_out(config)
    if fmt is Format.cloudformation:
        if others:
            raise InputError(
                "a template is one app's: pick it with --app NAME (--batch-config and several "
                "apps shape batch.yml only)"
            )
        paths = [cloudformation.write(config, target)]
    elif len(apps) > 1:
        # pr.yml and main.yml build, export and size-check one app; several apps of one
        # config are built together by the batch graph only (docs/codebuild.md).
        log.info(f"{len(apps)} apps: writing the batch build-graph; pr/main need --app NAME")
        paths = buildspec.write(config, target, others, kinds=("batch",))
    else:
        paths = buildspec.write(config, target, others)
    for path in paths:
        log.info(f"wrote {path}")


def _plan(config: configmod.Config) -> tuple[Any, Any]:
    from buildkit.codebuild import aws

    clients = aws.Clients(config.codebuild.region)
    return aws.make_plan(config, clients), clients


@codebuild_app.command()
def plan(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show, field by field, what `apply` would create or change in CodeBuild and IAM."""
    result, _ = _plan(resolve(ctx))
    if as_json:
        print(json.dumps(result.as_json(), indent=2, default=str))
        return
    print("\n".join(result.lines()))


@codebuild_app.command()
def apply(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or update the projects, webhooks, report groups (and role) to match the config."""
    from buildkit.codebuild import aws

    config = resolve(ctx)
    result, clients = _plan(config)
    print("\n".join(result.lines()), file=sys.stderr if as_json else sys.stdout)
    if result.pending and not yes:
        if not sys.stdin.isatty():
            raise ImgbuildError("apply changes AWS resources and stdin is no terminal; pass --yes")
        if not typer.confirm("Apply these changes?"):
            raise ImgbuildError("apply cancelled; nothing was changed")
    done = aws.apply(config, result, clients)
    summary = f"applied: {len(done)} change(s)" if done else "nothing to change"
    if as_json:
        print(json.dumps({"applied": [c.as_json() for c in done]}, indent=2, default=str))
    log.info(summary)


@codebuild_app.command()
def preflight(
    ctx: typer.Context,
    push: Annotated[
        bool, typer.Option("--push", help="Also require a registry to push to.")
    ] = False,
) -> None:
    """Check docker, BuildKit and the registry; describe the CodeBuild build; write
    <report dir>/codebuild.env (trigger, commit, release-tag choice) for the buildspec."""
    from buildkit.codebuild import runtime
    from buildkit.engine import builder
    from buildkit.run import pipeline

    config = resolve(ctx)
    pipeline.preflight(config, push=push)
    engine = builder.detect()
    branches = config.tags.release_branches  # the same branches as the tag policy
    log.info(f"engine: {engine.description}")
    log.info(runtime.describe(branches))
    directory = runtime.report_dir()
    path = runtime.write_env_file(
        directory / runtime.CONTEXT_FILE, runtime.context_variables(branches)
    )
    log.info(f"reports go to {directory}; build context in {path}")


@codebuild_app.command()
def exports(
    ctx: typer.Context,
    result: Annotated[Path, typer.Argument(help="The --json output of `imgbuild <layer>`.")],
) -> None:
    """Turn a build result into the buildspec's exported variables (<report dir>/exported.env)."""
    from buildkit.codebuild import runtime

    resolve(ctx)  # same config errors as every other command
    try:
        data = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{result}: not a readable imgbuild --json result ({exc}); did the build step fail?"
        ) from None
    variables = runtime.exported_variables(data)
    path = runtime.write_env_file(runtime.report_dir() / runtime.EXPORTS_FILE, variables)
    sys.stdout.write(runtime.shell_lines(variables))
    log.info(f"exported variables written to {path}")


def register(app: typer.Typer) -> None:
    """Add `imgbuild codebuild ...` to the main CLI."""
    app.add_typer(codebuild_app, name="codebuild")
