"""`imgbuild init [PATH]`: write the imgbuild.yaml of an existing Rails app (docs/init.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from buildkit import log
from buildkit.cli.options import Globals, JsonOpt
from buildkit.errors import ConfigError


def init(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            help="The Rails app's root directory (default: the current one).",
            show_default=False,
        ),
    ] = Path(),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing imgbuild.yaml.")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Image name prefix (default: the directory name)."),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option("--registry", help="Registry to write into the file (default: none)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write imgbuild.yaml for the Rails app in PATH.

    Reads the app (Ruby version, gems, Procfile, assets, .dockerignore) and explains every value
    it writes in comments; never overwrites an existing imgbuild.yaml without --force.
    """
    from buildkit.scaffold.write import init_app

    globals_ = ctx.find_root().obj
    if isinstance(globals_, Globals):
        if globals_.config:
            raise ConfigError(
                f"-c {globals_.config}: init writes PATH/imgbuild.yaml and reads no config; "
                "drop -c (give the app's directory as PATH)"
            )
        registry = registry if registry is not None else globals_.registry
    result = init_app(path, name=name, registry=registry, force=force)
    detection = result.detection
    for warning in detection.warnings:
        log.warn(warning)
    ignore = detection.dockerignore
    if ignore.suggestions:
        what = (
            "the app has no .dockerignore; lines for one"
            if not ignore.exists
            else "lines to add to the app's .dockerignore"
        )
        log.info(f"suggestion: {what} (the reasons are in {result.path.name}):")
        for suggestion in ignore.suggestions:
            log.info(f"  {suggestion.pattern}")
    verb = "replaced" if result.replaced else "wrote"
    log.info(
        f"{verb} {result.path}: ruby {detection.ruby.version} (from {detection.ruby.source}), "
        f"{len(detection.packages.packages)} runtime and {len(detection.packages.build_packages)} "
        f"build packages, command `{detection.command.command}` on port {detection.command.port}"
    )
    if as_json:
        print(json.dumps({"config": str(result.path), **detection.as_json()}, indent=2))


def register(app: typer.Typer) -> None:
    """Add `imgbuild init` to the app."""
    app.command("init")(init)
