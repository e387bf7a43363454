"""The options several commands share, and `resolve`: from -c/--registry to a frozen Config.

Help texts differ between commands (a report's --json prints "the report"; `ecr ensure` and
`promote` have none); they are part of `--help`'s output, so each factory takes the help text and
the `...Opt` aliases carry the common one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from buildkit.config import envvars
from buildkit.config import loading as configmod
from buildkit.errors import ConfigError

CONFIG_HELP = "Config file (default: ./imgbuild.yaml)."
REGISTRY_HELP = "Registry HOST:PORT or HOST/PATH; overrides the config and IMGBUILD_REGISTRY."
JSON_HELP = "Print a machine-readable result on stdout."
RELEASE_TAGS_HELP = "Move latest/main after a push (default: on release branches, not on PRs)."


def config_option(help_text: str | None = CONFIG_HELP) -> Any:
    """`-c/--config FILE`; on a command it wins over the global one."""
    return typer.Option("-c", "--config", help=help_text)


def registry_option(help_text: str | None = REGISTRY_HELP) -> Any:
    """`--registry HOST[:PORT][/PATH]`; on a command it wins over the global one."""
    return typer.Option("--registry", help=help_text)


def json_option(help_text: str | None = JSON_HELP) -> Any:
    """`--json`: the command's result as JSON on stdout (logs stay on stderr)."""
    return typer.Option("--json", help=help_text)


def release_tags_option(help_text: str | None = RELEASE_TAGS_HELP) -> Any:
    """`--release-tags/--no-release-tags`; None leaves the choice to the tag policy."""
    return typer.Option("--release-tags/--no-release-tags", help=help_text)


ConfigOpt = Annotated[str | None, config_option()]
RegistryOpt = Annotated[str | None, registry_option()]
JsonOpt = Annotated[bool, json_option()]
ReleaseTagsOpt = Annotated[bool | None, release_tags_option()]


@dataclass
class Globals:
    """The options given before the command (`imgbuild -c FILE --registry R <command>`); the
    app's callback stores them as the root context's obj."""

    config: str | None = None
    registry: str | None = None
    apps: tuple[str, ...] = ()  # `--app NAME`, repeated: the apps of an `apps:` config


APP_HELP = "An app of a config with apps: (repeat for several; default: all of them)."


def resolve(
    ctx: typer.Context, config: str | None = None, registry: str | None = None
) -> configmod.Config:
    """The config of this command: its own -c/--registry (if it has them) over the global ones,
    else ./imgbuild.yaml; --registry then overrides the file and IMGBUILD_REGISTRY. A command
    that works on one app needs `--app NAME` when the config describes several."""
    configs = resolve_all(ctx, config, registry)
    if len(configs) > 1:
        keys = ", ".join(c.app_key or c.name for c in configs)
        raise ConfigError(
            f"{configs[0].path}: this command works on one app and the config describes "
            f"several ({keys}); pick one with --app NAME"
        )
    return configs[0]


def resolve_all(
    ctx: typer.Context, config: str | None = None, registry: str | None = None
) -> tuple[configmod.Config, ...]:
    """Every app the command works on: those `--app` names, else all of the config's."""
    root = ctx.find_root().obj
    globals_ = root if isinstance(root, Globals) else Globals()
    path = configmod.find_config(config if config is not None else globals_.config)
    overrides = configmod.Overrides(
        registry=registry if registry is not None else globals_.registry
    )
    return configmod.resolve_all(path, overrides, apps=globals_.apps)


def refuse_empty_values(command: Any) -> None:
    """Make every option and argument of the click command typer built (and of its subcommands)
    that takes a value refuse an empty one (exit 3), before its own type reads it: typer would
    make `--out ''` Path('.'), and `--registry ''` would read as "not given" (envvars). Walking
    the built command covers an option added later without a word."""
    for param in command.params:
        if not getattr(param, "is_flag", False) and param.nargs == 1:
            param.type = _refusing_empty(param.type, _label(param), required=param.required)
    for sub in getattr(command, "commands", {}).values():
        refuse_empty_values(sub)


def _label(param: Any) -> str:
    """How the error names it: `-c/--config`, `--registry`; an argument by its metavar."""
    if param.param_type_name == "argument":
        return str(param.metavar or param.name).upper()
    return "/".join(param.opts)


def _refusing_empty(param_type: Any, label: str, *, required: bool) -> Any:
    """A copy of `param_type` whose conversion first refuses an empty string. A copy: click
    shares one instance of a type (STRING) between every parameter that has it."""
    refusing = copy.copy(param_type)
    convert = param_type.convert

    def checked(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str):  # defaults (None, Path(), 180.0) pass through untouched
            envvars.flag_value(label, value, required=required)
        return convert(value, param, ctx)

    refusing.convert = checked
    return refusing
