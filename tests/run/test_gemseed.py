"""run.gemseed against the real local registry: small images pushed here (a config with labels,
one tiny layer), single-platform and as an index, under repositories of this run's own."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from buildkit.chain import layers, state
from buildkit.chain.model import LayerSpec
from buildkit.config import loading as configmod
from buildkit.engine.registry import Manifest, RegistryClient
from buildkit.run import gemseed
from tests.conftest import DevEnv

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ATTESTATION = {"architecture": "unknown", "os": "unknown"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("usr/local/bundle/marker")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"x\n"))
    return gzip.compress(out.getvalue(), mtime=0)


def push_image(
    client: RegistryClient, repo: str, tag: str, labels: dict[str, str], arch: str = "amd64"
) -> str:
    """A one-layer image with these config labels at repo:tag; its manifest digest."""
    layer = _layer()
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [_digest(gzip.decompress(layer))]},
        }
    ).encode()
    for blob in (layer, config):
        client.upload_blob(repo, _digest(blob), blob)
    body = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": _digest(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": _digest(layer),
                "size": len(layer),
            }
        ],
    }
    return _put(client, repo, tag, DOCKER_MANIFEST, body)


def push_index(
    client: RegistryClient, repo: str, tag: str, entries: list[tuple[str, dict[str, str]]]
) -> str:
    """An index of (manifest digest, platform) entries at repo:tag; its digest."""
    manifests = [
        {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": 1, "platform": platform}
        for digest, platform in entries
    ]
    return _put(client, repo, tag, OCI_INDEX, {"schemaVersion": 2, "manifests": manifests})


def _put(client: RegistryClient, repo: str, tag: str, media_type: str, body: Any) -> str:
    raw = json.dumps(body).encode()
    return client.put_manifest(repo, tag, Manifest(_digest(raw), media_type, body, raw))


@dataclasses.dataclass
class Shop:
    config: configmod.Config
    base: LayerSpec
    client: RegistryClient
    repo: str  # the base repository without the registry host

    @property
    def key(self) -> str:
        return self.base.build_args[gemseed.KEY_ARG]


@pytest.fixture
def shop(tmp_path: Path, dev: DevEnv) -> Shop:
    """A small app whose repositories are this test's own, in the dev registry."""
    name = f"gemseed-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "shop"
    root.mkdir()
    (root / "Gemfile").write_text('gem "tinynative"\n')
    (root / "Gemfile.lock").write_text(
        "GEM\n  specs:\n    tinynative (0.1.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  tinynative\n"
    )
    (root / "imgbuild.yaml").write_text(
        f'name: {name}\nregistry: {dev.registry}\nruby:\n  version: "3.3.8"\n'
        "app:\n  command: ruby app.rb\n"
    )
    config = configmod.resolve(
        root / "imgbuild.yaml", env={"IMGBUILD_CACHE_DIR": str(tmp_path / "cache")}
    )
    base = layers.chain(config)[1]
    return Shop(config, base, RegistryClient(dev.registry), f"{name}-base")


def test_labels_name_the_bundle_key_of_base_only(shop: Shop) -> None:
    ruby, base, app = layers.chain(shop.config)
    assert gemseed.labels(base) == {gemseed.LABEL: shop.key}
    assert shop.key.startswith(f"{shop.config.name}-{ruby.tag}-")
    assert gemseed.labels(ruby) == {}
    assert gemseed.labels(app) == {}


def test_latest_with_the_same_bundle_key_seeds_pinned_by_digest(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = push_image(shop.client, shop.repo, "latest", {gemseed.LABEL: shop.key})
    args = gemseed.seed_build_args(shop.config, shop.base, shop.client)
    assert args == {"BUNDLE_SEED": f"{shop.base.repository}@{digest}"}
    assert f"gems seeded from {shop.base.repository}@{digest}" in capsys.readouterr().err
    assert shop.base.key == layers.chain(shop.config)[1].key  # a build arg, never an input


def test_another_bundle_key_is_never_a_seed(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    """Another Ruby or other build packages give another key: their gems are not reused."""
    other = dataclasses.replace(shop.config.base, build_packages=("libpq-dev",))
    changed = layers.chain(dataclasses.replace(shop.config, base=other))[1]
    assert changed.build_args[gemseed.KEY_ARG] != shop.key
    push_image(shop.client, shop.repo, "latest", {gemseed.LABEL: shop.key})
    assert gemseed.seed_build_args(shop.config, changed, shop.client) == {}
    err = capsys.readouterr().err
    assert f"gems not seeded: {shop.base.repository}:latest has bundle {shop.key}" in err


def test_an_unlabelled_or_missing_latest_is_no_seed(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gemseed.seed_build_args(shop.config, shop.base, shop.client) == {}
    assert f"{shop.base.repository}:latest is not in the registry" in capsys.readouterr().err
    push_image(shop.client, shop.repo, "latest", {"org.imgbuild.layer": "base"})
    assert gemseed.seed_build_args(shop.config, shop.base, shop.client) == {}
    assert f"no {gemseed.LABEL} label" in capsys.readouterr().err


def test_the_image_this_machine_last_used_seeds_when_latest_does_not(shop: Shop) -> None:
    push_image(shop.client, shop.repo, "latest", {gemseed.LABEL: "another-key"})
    digest = push_image(shop.client, shop.repo, "previous", {gemseed.LABEL: shop.key})
    record = state.LayerRecord(key="k", image=f"{shop.base.repository}:previous", inputs={})
    state.save(shop.config.cache_dir, shop.base.repository, record)
    args = gemseed.seed_build_args(shop.config, shop.base, shop.client)
    assert args == {"BUNDLE_SEED": f"{shop.base.repository}@{digest}"}


def test_an_index_seeds_with_its_entry_for_the_build_platform(shop: Shop) -> None:
    """Engine 26 pushes an index (the image and an attestation manifest): the seed is the
    platform's image, by its own digest, and its label is the one that counts."""
    amd64 = push_image(shop.client, shop.repo, "amd64", {gemseed.LABEL: shop.key})
    arm64 = push_image(shop.client, shop.repo, "arm64", {gemseed.LABEL: "arm-key"}, "arm64")
    attestation = push_image(shop.client, shop.repo, "att", {gemseed.LABEL: shop.key})
    entries = [
        (attestation, ATTESTATION),
        (arm64, {"architecture": "arm64", "os": "linux"}),
        (amd64, {"architecture": "amd64", "os": "linux"}),
    ]
    push_index(shop.client, shop.repo, "latest", entries)
    on_amd64 = dataclasses.replace(shop.config, platform="linux/amd64")
    args = gemseed.seed_build_args(on_amd64, shop.base, shop.client)
    assert args == {"BUNDLE_SEED": f"{shop.base.repository}@{amd64}"}
    on_arm64 = dataclasses.replace(shop.config, platform="linux/arm64")
    assert gemseed.seed_build_args(on_arm64, shop.base, shop.client) == {}


def test_an_index_without_the_build_platform_is_no_seed(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    amd64 = push_image(shop.client, shop.repo, "amd64", {gemseed.LABEL: shop.key})
    push_index(shop.client, shop.repo, "latest", [(amd64, ATTESTATION)])
    on_amd64 = dataclasses.replace(shop.config, platform="linux/amd64")
    assert gemseed.seed_build_args(on_amd64, shop.base, shop.client) == {}
    assert "latest has no linux/amd64 image" in capsys.readouterr().err


def test_no_registry_no_seed(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    assert gemseed.seed_build_args(shop.config, shop.base, None) == {}
    assert "gems not seeded: no registry" in capsys.readouterr().err


def test_an_unreachable_registry_is_no_seed_and_no_failure(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = RegistryClient("127.0.0.1:9", timeout=1.0)  # discard port: nothing listens
    base = dataclasses.replace(shop.base, repository="127.0.0.1:9/gemseed-base")
    assert gemseed.seed_build_args(shop.config, base, dead) == {}
    assert "is unreadable" in capsys.readouterr().err


def test_only_a_base_dockerfile_that_takes_a_seed_gets_one(shop: Shop, tmp_path: Path) -> None:
    push_image(shop.client, shop.repo, "latest", {gemseed.LABEL: shop.key})
    own = tmp_path / "Dockerfile.base"
    own.write_text("ARG RUBY_IMAGE\nFROM ${RUBY_IMAGE}\nARG BUNDLE_CACHE_KEY\n")
    base = dataclasses.replace(shop.base, dockerfile=own)
    assert gemseed.seed_build_args(shop.config, base, shop.client) == {}
    app = layers.chain(shop.config)[2]
    assert gemseed.seed_build_args(shop.config, app, shop.client) == {}


@pytest.mark.parametrize("switch", ["off", "OFF", "0", "false", "no"])
def test_gem_seed_off_passes_no_seed_and_says_so(
    shop: Shop, switch: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """IMGBUILD_GEM_SEED=off: no seed even when `latest` would be one, and no registry asked."""
    push_image(shop.client, shop.repo, "latest", {gemseed.LABEL: shop.key})
    monkeypatch.setenv(gemseed.ENV, switch)
    assert gemseed.seed_build_args(shop.config, shop.base, shop.client) == {}
    dead = RegistryClient("127.0.0.1:9", timeout=1.0)  # asked, it would say "unreadable"
    assert gemseed.seed_build_args(shop.config, shop.base, dead) == {}
    err = capsys.readouterr().err
    assert err.count(f"base: gems not seeded: {gemseed.ENV}={switch}\n") == 2
    assert "unreadable" not in err
    monkeypatch.setenv(gemseed.ENV, "on")
    assert gemseed.seed_build_args(shop.config, shop.base, shop.client) != {}
