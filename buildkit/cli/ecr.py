"""`imgbuild ecr ensure` and `imgbuild promote`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from buildkit.config.loading import Config

Resolver = Callable[[typer.Context, str | None, str | None], Config]


def register(app: typer.Typer, resolve: Resolver) -> None:
    ecr_app = typer.Typer(help="Amazon ECR repositories of the chain.", no_args_is_help=True)
    app.add_typer(ecr_app, name="ecr")

    @ecr_app.command("ensure")
    def ensure(
        ctx: typer.Context,
        config: Annotated[str | None, typer.Option("-c", "--config")] = None,
        registry: Annotated[str | None, typer.Option("--registry")] = None,
    ) -> None:
        """Create or update the chain's ECR repositories (settings, tags, lifecycle policy)."""
        from buildkit.errors import ConfigError
        from buildkit.run.access import ensure_ecr_repositories, open_registry

        resolved, access = open_registry(resolve(ctx, config, registry))
        if access.ecr_registry is None:
            raise ConfigError(f"{resolved.path}: registry {resolved.registry} is not Amazon ECR")
        changes = ensure_ecr_repositories(resolved, access)
        print("\n".join(changes) if changes else "no changes")

    @app.command("promote")
    def promote(
        ctx: typer.Context,
        layer: Annotated[str, typer.Argument(help="ruby, base or app (and what it depends on)")],
        source: Annotated[str, typer.Option("--from", help="Registry to copy from.")],
        target: Annotated[str, typer.Option("--to", help="Registry to copy to.")],
        release_tags: Annotated[
            bool | None, typer.Option("--release-tags/--no-release-tags")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        config: Annotated[str | None, typer.Option("-c", "--config")] = None,
    ) -> None:
        """Copy the chain to another registry by digest, without rebuilding."""
        from buildkit.config.loading import LAYERS
        from buildkit.errors import ConfigError
        from buildkit.run import promote as promote_mod

        if layer not in LAYERS:
            raise ConfigError(f"promote: unknown layer '{layer}'; use ruby, base or app")
        resolved = resolve(ctx, config, None)
        results = promote_mod.promote(resolved, layer, source, target, release=release_tags)
        if as_json:
            print(json.dumps({"layers": [r.__dict__ for r in results]}, indent=2))
