"""`imgbuild verify`: start the app image with its services, check it answers, run its tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from buildkit import cachedir
from buildkit.cli.options import ConfigOpt, JsonOpt, RegistryOpt, resolve
from buildkit.config.loading import Config
from buildkit.errors import ConfigError


def default_out_dir(config: Config) -> Path:
    """$IMGBUILD_REPORT_DIR/verify in a buildspec, else the cache dir's verify/<name>."""
    from buildkit.codebuild.runtime import REPORT_DIR_ENV  # not on every command's start-up

    report_dir = os.environ.get(REPORT_DIR_ENV)
    if report_dir:
        return Path(report_dir).absolute() / "verify"
    return cachedir.verify_dir(config.cache_dir, config.name)


def verify(
    ctx: typer.Context,
    smoke_only: Annotated[
        bool, typer.Option("--smoke-only", help="Only start the app and check that it answers.")
    ] = False,
    tests_only: Annotated[
        bool, typer.Option("--tests-only", help="Only run the tests (in the test variant).")
    ] = False,
    push: Annotated[
        bool,
        typer.Option("--push", help="Push the test variant too, for the next build's cache."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where JUnit files and logs go (default: $IMGBUILD_REPORT_DIR/verify, else "
            "the cache dir).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Start the app image with its services, check that it answers, run its tests in the image.

    Services (verify.services) run on a private network; their addresses reach the app as
    DATABASE_URL, REDIS_URL, ...; everything is removed afterwards, also on Ctrl-C.
    """
    from buildkit.run import verify as verifymod

    if smoke_only and tests_only:
        raise ConfigError("--smoke-only and --tests-only exclude each other; give one or none")
    resolved = resolve(ctx, config, registry)
    options = verifymod.VerifyOptions(
        out_dir=(out or default_out_dir(resolved)).absolute(),
        smoke=not tests_only,
        tests=not smoke_only,
        push=push,
    )
    result = verifymod.verify(resolved, options)
    if as_json:  # also when it failed: CI reads what failed from the same document
        print(json.dumps({"verify": result.as_json()}, indent=2))
    result.raise_failure()


def register(app: typer.Typer) -> None:
    app.command(name="verify")(verify)
