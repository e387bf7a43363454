"""What run.underlays does for the app's hidden images, with the daemon, the registry and BuildKit
faked: the real builds are in tests/applayer/ (test_assets.py, test_bulk.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildkit.applayer.assets import AssetsSpec
from buildkit.applayer.bulk import BulkSpec
from buildkit.chain import labels, layers
from buildkit.chain.model import LayerSpec
from buildkit.config import loading as configmod
from buildkit.engine import builder
from buildkit.engine.docker_api import LocalImage
from buildkit.engine.registry import RegistryClient
from buildkit.errors import RegistryError
from buildkit.run import underlays

ENGINE = builder.Engine(cli="docker", buildx=True, description="fake")
AUTH = {"username": "u", "password": "p"}
APP = {
    "imgbuild.yaml": 'name: shop\nregistry: reg.test:5000\nruby:\n  version: "3.3.8"\n',
    "Gemfile": 'gem "rails"\n',
    "Gemfile.lock": (
        "GEM\n  specs:\n    rails (7.2.2)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rails\n"
    ),
    "bin/rails": "#!/bin/sh\n",
    "app/assets/stylesheets/application.css": "body {}\n",
    "app/assets/images/logo.png": "png",
}


class Registry(RegistryClient):
    def __init__(self, tags: set[str]) -> None:  # nothing to reach
        self.tags = tags

    def exists(self, repo: str, reference: str) -> str | None:
        return "sha256:remote" if f"{repo}:{reference}" in self.tags else None


class World:
    """The daemon's images, and what was pulled and built."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.local: set[str] = set()
        self.pulled: list[tuple[str, Mapping[str, str] | None]] = []
        self.built: list[builder.BuildRequest] = []
        self.pull_error: str | None = None
        monkeypatch.setattr(underlays.docker_api, "local_image", self.local_image)
        monkeypatch.setattr(underlays.docker_api, "pull", self.pull)
        monkeypatch.setattr(underlays.builder, "build", self.build)

    def local_image(self, ref: str) -> LocalImage | None:
        return (
            LocalImage(id="sha256:x", labels={}, size=1, repo_digests=())
            if ref in self.local
            else None
        )

    def pull(self, ref: str, auth: Mapping[str, str] | None = None) -> None:
        if self.pull_error:
            raise RegistryError(self.pull_error)
        self.pulled.append((ref, auth))
        self.local.add(ref)

    def build(
        self, engine: builder.Engine, request: builder.BuildRequest, env: Mapping[str, str] | None
    ) -> builder.BuildResult:
        assert engine is ENGINE
        assert env == {}
        self.built.append(request)
        self.local.update(request.tags)
        return builder.BuildResult(image_id="sha256:built", seconds=2.0, steps=())


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


@dataclass(frozen=True)
class App:
    config: configmod.Config
    spec: LayerSpec
    assets: AssetsSpec
    bulk: BulkSpec
    base: LayerSpec


@pytest.fixture
def app(tmp_path: Path) -> App:
    """A Rails-like app with a stylesheet and an image: base -> assets -> bulk -> app."""
    root = tmp_path / "shop"
    for name, text in APP.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    config = configmod.resolve(root / "imgbuild.yaml", env={"IMGBUILD_CACHE_DIR": str(tmp_path)})
    _, base, spec = layers.chain(config)
    assert spec.assets is not None
    assert spec.bulk is not None
    return App(config=config, spec=spec, assets=spec.assets, bulk=spec.bulk, base=base)


def ensure(app: App, registry: set[str], *, forced: bool = False) -> float:
    return underlays.ensure_assets(
        app.config,
        ENGINE,
        app.spec,
        Registry(registry),
        pull_auth=lambda: AUTH,
        forced=forced,
        env={},
    )


def repo_tag(image: str) -> str:
    return image.split("/", 1)[1]


def test_the_daemons_assets_image_is_used_as_it_is(world: World, app: App) -> None:
    world.local.add(app.assets.image)
    assert ensure(app, {repo_tag(app.assets.image)}) == 0.0
    assert world.pulled == []
    assert world.built == []


def test_the_registrys_assets_image_is_pulled_not_precompiled_again(world: World, app: App) -> None:
    ensure(app, {repo_tag(app.assets.image)})
    assert world.pulled == [(app.assets.image, AUTH)]
    assert world.built == []


def test_an_assets_image_nowhere_is_built_from_the_app_context_on_the_base(
    world: World, app: App
) -> None:
    assert ensure(app, set()) >= 2.0
    assert world.pulled == []
    [request] = world.built
    assert request.tags == [app.assets.image]
    assert request.build_args == {"BASE_IMAGE": app.base.image}
    assert request.context == app.config.app.context
    assert request.dockerfile.read_text() == app.assets.dockerfile
    assert request.dockerfile.parent.name == "assets"
    assert request.labels[labels.KEY] == app.assets.key
    assert not request.no_cache


def test_a_failed_pull_falls_back_to_a_build(world: World, app: App) -> None:
    world.pull_error = "manifest unknown"
    ensure(app, {repo_tag(app.assets.image)})
    assert [r.tags for r in world.built] == [[app.assets.image]]


def test_no_cache_precompiles_again(world: World, app: App) -> None:
    world.local.add(app.assets.image)
    ensure(app, {repo_tag(app.assets.image)}, forced=True)
    assert world.pulled == []
    assert [r.no_cache for r in world.built] == [True]


def test_the_bulk_is_built_on_the_assets_image(world: World, app: App) -> None:
    underlays.ensure_bulk(app.config, ENGINE, app.spec, None, forced=False, env={})
    [request] = world.built
    assert request.tags == [app.bulk.image]
    assert request.build_args == {"BASE_IMAGE": app.assets.image}
