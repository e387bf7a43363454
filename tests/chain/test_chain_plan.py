"""The plan's decisions (chain.plan): up to date or build, and why, against a fake daemon image
store and a fake registry. (plan.diff_inputs alone is in tests/chain/test_labels_and_plan.py.)"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from chain_shop import write_shop

from buildkit.chain import layers, plan
from buildkit.chain.model import LayerPlan
from buildkit.config.loading import Config
from buildkit.engine.docker_api import LocalImage
from buildkit.engine.registry import Manifest, RegistryClient, split_ref


@pytest.fixture
def shop(tmp_path: Path) -> Config:
    return write_shop(tmp_path)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class FakeDaemon:
    """The daemon's image store as a set of refs; remembers which refs the plan asked about."""

    def __init__(self, *refs: str) -> None:
        self.refs = set(refs)
        self.asked: list[str] = []

    def local_image(self, ref: str) -> LocalImage | None:
        self.asked.append(ref)
        if ref not in self.refs:
            return None
        return LocalImage(id=_digest(f"id {ref}"), labels={}, size=1, repo_digests=())


class FakeRegistry(RegistryClient):
    """A registry holding the given refs; the plan only asks `exists`."""

    def __init__(self, *refs: str) -> None:  # no host to reach: the base __init__ is not run
        self.digests = {split_ref(ref)[1:]: _digest(ref) for ref in refs}

    def exists(self, repo: str, reference: str) -> str | None:
        return self.digests.get((repo, reference))

    def manifest(self, repo: str, reference: str) -> Manifest | None:  # noqa: ARG002
        """No manifest to read: a stale layer's registry inputs (chain.inputsref) are absent."""
        return None


def images(config: Config) -> list[str]:
    return [spec.image for spec in layers.chain(config)]


def decisions(plans: list[LayerPlan]) -> dict[str, str]:
    return {p.spec.name: p.status for p in plans}


def record_all(config: Config) -> None:
    """What a successful run leaves behind: each layer's inputs, for the next run's reasons."""
    for spec in layers.chain(config):
        plan.record(config, spec)


@pytest.mark.parametrize(
    ("target", "expected"),
    [("ruby", ("ruby",)), ("base", ("ruby", "base")), ("app", ("ruby", "base", "app"))],
)
def test_a_target_needs_itself_and_its_parents(target: str, expected: tuple[str, ...]) -> None:
    assert plan.layers_up_to(target) == expected


@pytest.mark.parametrize("target", ["ruby", "base", "app"])
def test_the_plan_stops_at_its_target(shop: Config, target: str) -> None:
    plans = plan.make_plan(shop, target, local_image=FakeDaemon().local_image)
    assert [p.spec.name for p in plans] == list(plan.layers_up_to(target))


def test_images_in_the_daemon_are_up_to_date(shop: Config) -> None:
    plans = plan.make_plan(shop, local_image=FakeDaemon(*images(shop)).local_image)
    assert decisions(plans) == {"ruby": "up-to-date", "base": "up-to-date", "app": "up-to-date"}
    assert all(p.reasons == () and p.local_id and p.remote_digest is None for p in plans)


def test_images_only_in_the_registry_are_up_to_date_without_asking_the_daemon(
    shop: Config,
) -> None:
    daemon = FakeDaemon()
    registry = FakeRegistry(*images(shop))
    plans = plan.make_plan(shop, registry=registry, push=True, local_image=daemon.local_image)
    assert decisions(plans) == {"ruby": "up-to-date", "base": "up-to-date", "app": "up-to-date"}
    assert [p.remote_digest for p in plans] == [_digest(image) for image in images(shop)]
    assert daemon.asked == []  # a no-op --push never touches the daemon


def test_a_run_without_push_looks_for_its_target_in_the_daemon(shop: Config) -> None:
    daemon = FakeDaemon()
    registry = FakeRegistry(*images(shop))
    plans = plan.make_plan(shop, "base", registry=registry, local_image=daemon.local_image)
    assert decisions(plans) == {"ruby": "up-to-date", "base": "up-to-date"}
    assert daemon.asked == [images(shop)[1]]  # base is needed locally, ruby is not


def test_which_layers_are_built_for_a_target(shop: Config) -> None:
    ruby, base, _ = images(shop)
    daemon = FakeDaemon(ruby)
    assert decisions(plan.make_plan(shop, "base", local_image=daemon.local_image)) == {
        "ruby": "up-to-date",
        "base": "build",
    }
    registry = FakeRegistry(base)  # another machine pushed base: only app is left to build
    plans = plan.make_plan(shop, registry=registry, local_image=daemon.local_image)
    assert decisions(plans) == {"ruby": "up-to-date", "base": "up-to-date", "app": "build"}


def test_a_first_build_says_nothing_was_recorded(shop: Config) -> None:
    ruby, base, app = plan.make_plan(shop, local_image=FakeDaemon().local_image)
    assert decisions([ruby, base, app]) == {"ruby": "build", "base": "build", "app": "build"}
    assert ruby.reasons == (
        f"no image {ruby.spec.image} locally or in reg.test:5000, and no earlier build recorded",
    )
    assert base.reasons == (
        f"ruby image changes (new ruby key {ruby.spec.tag})",
        f"no image {base.spec.image} locally or in reg.test:5000, and no earlier build recorded",
    )


def test_an_image_gone_with_unchanged_inputs_is_missing(shop: Config) -> None:
    record_all(shop)
    ruby, base, app = images(shop)
    plans = plan.make_plan(shop, local_image=FakeDaemon(ruby, base).local_image)
    assert decisions(plans) == {"ruby": "up-to-date", "base": "up-to-date", "app": "build"}
    assert plans[2].reasons == (f"image {app} is missing (deleted or never pushed)",)


def test_a_lockfile_change_rebuilds_base_and_app_and_says_so(shop: Config) -> None:
    record_all(shop)
    daemon = FakeDaemon(*images(shop))  # every image of the previous run is still there
    (shop.app.context / "Gemfile.lock").write_text(
        "GEM\n  specs:\n    rack (3.2.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rack\n"
    )
    _ruby, base, app = plan.make_plan(shop, local_image=daemon.local_image)
    assert decisions([_ruby, base, app]) == {"ruby": "up-to-date", "base": "build", "app": "build"}
    assert base.reasons == ("Gemfile.lock changed",)
    assert app.reasons == (
        f"base image changes (new base key {base.spec.tag})",
        "Gemfile.lock changed",
    )


def test_a_ruby_version_change_is_named_and_rebuilds_every_layer(shop: Config) -> None:
    record_all(shop)
    daemon = FakeDaemon(*images(shop))
    newer = dataclasses.replace(shop, ruby=dataclasses.replace(shop.ruby, version="3.3.9"))
    ruby, base, app = plan.make_plan(newer, local_image=daemon.local_image)
    assert decisions([ruby, base, app]) == {"ruby": "build", "base": "build", "app": "build"}
    assert ruby.reasons == ("ruby version 3.3.8 → 3.3.9",)
    # base's own inputs did not change: its new key comes from the rebuilt parent alone
    assert base.reasons == (f"ruby image changes (new ruby key {ruby.spec.tag})",)
    assert base.spec.image not in daemon.refs


def test_a_forced_layer_is_rebuilt_although_present(shop: Config) -> None:
    daemon = FakeDaemon(*images(shop))
    plans = plan.make_plan(shop, force=frozenset({"app"}), local_image=daemon.local_image)
    assert decisions(plans) == {"ruby": "up-to-date", "base": "up-to-date", "app": "build"}
    assert plans[2].reasons == ("--no-cache asked for a rebuild",)


def test_a_forced_layer_that_is_absent_gives_the_real_reason(shop: Config) -> None:
    record_all(shop)
    ruby, base, app = images(shop)
    daemon = FakeDaemon(ruby, base)
    plans = plan.make_plan(shop, force=frozenset({"app"}), local_image=daemon.local_image)
    assert plans[2].reasons == (f"image {app} is missing (deleted or never pushed)",)
