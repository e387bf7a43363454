"""RegistryClient's write side against a real registry (distribution): uploads that survive lost
responses, cross-repository mounts (201 mounted, 202 not), and the inputs artifact beside an
image (chain.inputsref)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.chain import inputsref
from buildkit.engine.registry import Manifest, RegistryClient
from tests.registry_fixtures import ScratchRegistry, start_scratch_registry
from tests.registry_proxy import RegistryProxy


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(name="registry", scope="module")
def registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchRegistry]:
    registry = start_scratch_registry(tmp_path_factory.mktemp("upload-registry"))
    try:
        yield registry
    finally:
        registry.stop()


def _client(address: str) -> RegistryClient:
    return RegistryClient(address, auth=None)


def _image(client: RegistryClient, repo: str, tag: str, layer: bytes) -> Manifest:
    """A minimal image (one layer, a config) pushed in the safe order; its manifest."""
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()
    for blob in (layer, config):
        client.upload_blob(repo, _digest(blob), blob)
    body = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _digest(layer),
                "size": len(layer),
            }
        ],
    }
    raw = json.dumps(body).encode()
    manifest = Manifest(_digest(raw), "application/vnd.oci.image.manifest.v1+json", body, raw)
    client.put_manifest(repo, tag, manifest)
    return manifest


def test_a_file_upload_streams_and_lands(registry: ScratchRegistry, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    client = _client(registry.address)
    with path.open("rb") as payload:
        client.upload_blob("up/files", _digest(data), payload)
    assert client.blob("up/files", _digest(data)) == data


def test_upload_survives_lost_responses(registry: ScratchRegistry) -> None:
    """Every PUT applied upstream but its answer lost (500 after forwarding): a retry to the
    same session meets a spent session; the client opens a new one and the blob lands."""
    data = os.urandom(1 << 20)
    with RegistryProxy(registry.address) as proxy:
        proxy.inject_faults(
            ratio=1.0, kinds=("500",), methods=("PUT",), when="after", max_faults=2, seed=3
        )
        client = _client(proxy.address)
        client.upload_blob("up/lost", _digest(data), io.BytesIO(data))
        assert proxy.stats.faults_injected == 2
    assert _client(registry.address).blob("up/lost", _digest(data)) == data


def test_mount_links_a_blob_across_repositories(registry: ScratchRegistry) -> None:
    client = _client(registry.address)
    layer = os.urandom(4096)
    _image(client, "mount/base", "v1", layer)
    assert not client.has_blob("mount/app", _digest(layer))
    assert client.mount_blob("mount/app", _digest(layer), "mount/base") is True
    assert client.has_blob("mount/app", _digest(layer))


def test_mount_of_an_unknown_blob_answers_with_an_upload_session(registry: ScratchRegistry) -> None:
    client = _client(registry.address)
    missing = _digest(b"never pushed anywhere " + os.urandom(8))
    assert client.mount_blob("mount/app2", missing, "mount/base") is False


def test_inputs_artifact_round_trip_and_latest(registry: ScratchRegistry) -> None:
    client = _client(registry.address)
    image = _image(client, "art/app", "0123abcd", os.urandom(2048))
    inputs = {"ruby": "3.3.8", "file:app/models/user.rb": "sha256:" + "a" * 64}
    inputsref.push(client, "art/app", "0123abcd", image, inputs)
    assert inputsref.load(client, "art/app", "0123abcd") == inputs
    stored = client.manifest("art/app", inputsref.tag_for("0123abcd"))
    assert stored is not None
    assert stored.body["subject"]["digest"] == image.digest
    assert stored.body["artifactType"] == inputsref.ARTIFACT_TYPE
    assert inputsref.load(client, "art/app", "ffff0000") is None


def test_a_refused_artifact_is_a_warning_not_a_failure(
    registry: ScratchRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _client(registry.address)
    image = _image(client, "art/refused", "t1", os.urandom(512))
    with RegistryProxy(registry.address) as proxy:
        proxy.inject_faults(ratio=1.0, kinds=("500",), path_regex=r"/manifests/", seed=1)
        inputsref.push(_client(proxy.address), "art/refused", "t1", image, {"a": "b"})
    assert "its inputs were not stored" in capsys.readouterr().err
    assert inputsref.load(client, "art/refused", "t1") is None


def test_what_a_client_pushed_it_reads_back_without_asking(registry: ScratchRegistry) -> None:
    """A one-shot run reads the manifest and config it just pushed (tag moves, the report) and
    asks about blobs it just stored: the client answers from memory (issue 17, P2-ONESHOT). A
    new client asks the registry, and gets the same bytes."""
    with RegistryProxy(registry.address) as proxy:
        client = _client(proxy.address)
        layer = os.urandom(2048)
        manifest = _image(client, "memo/app", "v1", layer)
        config_digest = str(manifest.body["config"]["digest"])
        client.remember("memo/app", config_digest, "application/octet-stream", b"{}")
        before = proxy.stats.requests
        assert client.manifest("memo/app", manifest.digest) == manifest
        assert client.blob("memo/app", config_digest) == b"{}"
        assert client.has_blob("memo/app", _digest(layer))
        assert proxy.stats.requests == before
        fresh = _client(proxy.address)
        assert fresh.manifest("memo/app", manifest.digest) == manifest
        assert fresh.has_blob("memo/app", _digest(layer))
        assert proxy.stats.requests == before + 2
