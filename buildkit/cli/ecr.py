"""`imgbuild ecr ensure` and `imgbuild promote`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from buildkit.cli.options import (
    config_option,
    json_option,
    registry_option,
    release_tags_option,
    resolve,
)

ecr_app = typer.Typer(help="Amazon ECR repositories of the chain.", no_args_is_help=True)


@ecr_app.command("ensure")
def ensure(
    ctx: typer.Context,
    config: Annotated[str | None, config_option(help_text=None)] = None,
    registry: Annotated[str | None, registry_option(help_text=None)] = None,
) -> None:
    """Create or update the chain's ECR repositories (settings, tags, lifecycle policy)."""
    from buildkit.errors import ConfigError
    from buildkit.run.access import ensure_ecr_repositories, open_registry

    resolved, access = open_registry(resolve(ctx, config, registry))
    if access.ecr_registry is None:
        raise ConfigError(f"{resolved.path}: registry {resolved.registry} is not Amazon ECR")
    changes = ensure_ecr_repositories(resolved, access)
    print("\n".join(changes) if changes else "no changes")


def promote(
    ctx: typer.Context,
    layer: Annotated[str, typer.Argument(help="ruby, base or app (and what it depends on)")],
    source: Annotated[str, typer.Option("--from", help="Registry to copy from.")],
    target: Annotated[str, typer.Option("--to", help="Registry to copy to.")],
    release_tags: Annotated[bool | None, release_tags_option(help_text=None)] = None,
    as_json: Annotated[bool, json_option(help_text=None)] = False,
    config: Annotated[str | None, config_option(help_text=None)] = None,
) -> None:
    """Copy the chain to another registry by digest, without rebuilding."""
    from buildkit.config.loading import LAYERS
    from buildkit.errors import ConfigError
    from buildkit.run import promote as promote_mod

    if layer not in LAYERS:
        raise ConfigError(f"promote: unknown layer '{layer}'; use ruby, base or app")
    # --from/--to name the registries; a global --registry still reaches the config.
    source, target = _registry_flag("--from", source), _registry_flag("--to", target)
    resolved = resolve(ctx, config)
    results = promote_mod.promote(resolved, layer, source, target, release=release_tags)
    if as_json:
        print(json.dumps({"layers": [r.__dict__ for r in results]}, indent=2))


def _registry_flag(flag: str, value: str) -> str:
    """A registry flag checked as `registry:` is: one line naming the flag (exit 3) for what
    Docker would read as a Docker Hub namespace or refuse."""
    from pathlib import Path

    from buildkit.config import schema
    from buildkit.config.yamlsrc import Document

    doc = Document(path=Path(flag), data={}, origins={"registry": flag})
    return schema.registry(doc, value) or value


def register(app: typer.Typer) -> None:
    """Add `imgbuild ecr ...` and `imgbuild promote` to the main CLI."""
    app.command("promote")(promote)
    app.add_typer(ecr_app, name="ecr")
