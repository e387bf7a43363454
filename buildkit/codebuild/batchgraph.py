"""The batch buildspec's build-graph: ruby → base → app as dependent CodeBuild builds, for one app
or for several built together (a monorepo's apps, each with its imgbuild.yaml).

One node per distinct Ruby image (repository:tag: apps that share a Ruby repository through
`ecr.repositories.ruby` and the same Ruby inputs share one node), one per distinct base image, one
per app, with `depend-on` edges along each chain. Every node runs the buildspec's one set of
phases; its `env.variables` say which layer (IMGBUILD_LAYER) of which config (`selection`) it
builds, and an entry's variables override the buildspec's own. A node's `imgbuild <layer> --push`
builds whatever of its chain the registry lacks, so a graph made stale by a config change still
makes the right images: at worst a shared layer is built by two nodes until it is rendered again.

Identifiers: CodeBuild accepts letters, digits and underscores, fewer than 128 characters (else
BATCH_SPEC_VALIDATION_ERROR), and an entry may depend only on entries listed before it. A single
app keeps the plain layer names (`ruby`, `base`, `app`); several get `<app>_<layer>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from buildkit.chain import layers
from buildkit.codebuild import runtime
from buildkit.codebuild.repo import config_in_repo, source_root
from buildkit.config.loading import Config
from buildkit.errors import ConfigError

#: Set on an app entry whose config has a `verify:` section: ruby and base reject --verify.
VERIFY_ENV = "IMGBUILD_VERIFY"
#: Which config a node's commands read (`imgbuild -c "$IMGBUILD_CONFIG" ...`).
CONFIG_ENV = "IMGBUILD_CONFIG"
#: Which app of an `apps:` config (`--app "$IMGBUILD_APP"`); unset for a one-app config.
APP_ENV = "IMGBUILD_APP"
LAYER_ENV = "IMGBUILD_LAYER"
IDENTIFIER_LIMIT = 127
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True, kw_only=True)
class Node:
    """One build of the batch: `layer` of `config`'s chain."""

    identifier: str
    layer: str
    config: Config
    depend_on: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"identifier": self.identifier}
        if self.depend_on:
            entry["depend-on"] = list(self.depend_on)
        variables = {LAYER_ENV: self.layer, **self.variables}
        if self.layer == "app" and self.config.verify.declared:
            variables[VERIFY_ENV] = "1"
        entry["env"] = {"variables": variables}
        return entry


def selection(config: Config) -> dict[str, str]:
    """The variables that point a node's `imgbuild` at its app: the config's path from the
    repository root, and for an app of an `apps:` config its key (`--app`)."""
    chosen = {CONFIG_ENV: config_in_repo(config)}
    if config.app_key is not None:
        chosen[APP_ENV] = config.app_key
    return chosen


def identifier(name: str, layer: str, taken: set[str]) -> str:
    """`<name>_<layer>` as CodeBuild accepts it, unique among `taken` (which it joins)."""
    stem = _NOT_ALLOWED.sub("_", name).strip("_") or "app"
    suffix = f"_{layer}"
    candidate, n = "", 1
    while not candidate or candidate in taken:
        tail = suffix if n == 1 else f"{suffix}_{n}"
        candidate = stem[: IDENTIFIER_LIMIT - len(tail)] + tail
        n += 1
    taken.add(candidate)
    return candidate


def _single(config: Config) -> list[Node]:
    previous: tuple[str, ...] = ()
    nodes = []
    for layer in runtime.LAYERS:
        nodes.append(Node(identifier=layer, layer=layer, config=config, depend_on=previous))
        previous = (layer,)
    return nodes


def _several(configs: Sequence[Config]) -> list[Node]:
    taken: set[str] = set()
    rubies: dict[str, Node] = {}
    bases: dict[str, Node] = {}
    apps: list[Node] = []

    def node(config: Config, layer: str, depend_on: tuple[str, ...] = ()) -> Node:
        ident = identifier(config.name, layer, taken)
        return Node(
            identifier=ident,
            layer=layer,
            config=config,
            depend_on=depend_on,
            variables=selection(config),
        )

    for config in configs:
        ruby_spec = layers.ruby_spec(config)
        base_spec = layers.base_spec(config, ruby_spec)
        if ruby_spec.image not in rubies:
            rubies[ruby_spec.image] = node(config, "ruby")
        ruby = rubies[ruby_spec.image]
        if base_spec.image not in bases:
            bases[base_spec.image] = node(config, "base", (ruby.identifier,))
        apps.append(node(config, "app", (bases[base_spec.image].identifier,)))
    return [*rubies.values(), *bases.values(), *apps]


def _check_together(configs: Sequence[Config]) -> None:
    apps = [(c.path.resolve(), c.app_key) for c in configs]
    for path, key in apps:
        if apps.count((path, key)) > 1:
            what = f"app {key} of {path}" if key else str(path)
            raise ConfigError(f"{what}: given twice; list each app's config once")
    roots = {source_root(c) for c in configs}
    if len(roots) > 1:
        raise ConfigError(
            f"{configs[1].path}: not in the repository of {configs[0].path}; a batch builds "
            "one checkout, so every app's config must be in the same repository"
        )


def nodes(configs: Sequence[Config]) -> list[Node]:
    """The graph's builds, each listed after those it depends on."""
    if not configs:
        raise ConfigError("a batch build-graph needs at least one config")
    if len(configs) == 1:
        return _single(configs[0])
    _check_together(configs)
    return _several(configs)


def siblings(config: Config) -> tuple[Config, ...]:
    """Every app built with this one: for an app of an `apps:` config all apps of its file
    (their batch graph runs under one project and one role), else the config alone."""
    if config.app_key is None:
        return (config,)
    from buildkit.config.loading import Overrides, resolve_all

    return resolve_all(config.path, Overrides(registry=config.registry))


def builds_in_batch(config: Config) -> int:
    """Entries of the batch graph `codebuild render` writes for this config's file."""
    return len(nodes(siblings(config)))


def render_batch_graph(configs: Sequence[Config]) -> dict[str, Any]:
    """The buildspec's `batch` mapping: fast-fail, and the build-graph of every app's chain."""
    return {"fast-fail": True, "build-graph": [n.entry() for n in nodes(configs)]}
