"""Throwaway registries for tests: a fresh `docker-registry` per test, a `RegistryProxy` in
front of it, and small helpers (manifest digest, Docker SDK push with the stream scanned).

Fixtures (function-scoped, so every test gets its own registry): `scratch_registry`,
`proxied_registry`, `local_images`. A test module makes them visible by importing the fixture
functions (their Python names end in `_fixture`, so test parameters don't shadow the imports):

    from tests.registry_fixtures import (  # noqa: F401 - fixtures, requested by name
        local_images_fixture,
        proxied_registry_fixture,
        scratch_registry_fixture,
    )
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.registry_proxy import RegistryProxy

__all__ = [
    "MANIFEST_ACCEPT",
    "LocalImages",
    "PushOutcome",
    "ScratchRegistry",
    "docker_push",
    "image_manifest",
    "is_attestation",
    "local_images_fixture",
    "proxied_registry_fixture",
    "registry_digest",
    "registry_manifest",
    "scratch_registry_fixture",
    "start_scratch_registry",
]

REGISTRY_BINARY = "docker-registry"
START_SECONDS = 15.0
START_ATTEMPTS = 3  # a free port picked by bind(0) can be taken again before the registry binds

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)

_CONFIG = """\
version: 0.1
log:
  level: info
  fields:
    service: scratch-registry
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {address}
  headers:
    X-Content-Type-Options: [nosniff]
"""


@dataclass
class ScratchRegistry:
    """A `docker-registry serve` process of its own, with its own storage directory."""

    address: str  # "127.0.0.1:PORT"
    storage: Path  # the filesystem driver's rootdirectory
    config: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def blob_files(self) -> list[Path]:
        """Every stored blob (layers, configs and manifests alike)."""
        root = self.storage / "docker" / "registry" / "v2" / "blobs"
        return sorted(root.rglob("data")) if root.is_dir() else []

    def blob_bytes(self) -> int:
        """Bytes stored as blobs: what a client pushed, each distinct blob once."""
        return sum(p.stat().st_size for p in self.blob_files())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_v2(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start_scratch_registry(root: Path, *, start_seconds: float = START_SECONDS) -> ScratchRegistry:
    """Start a new registry with storage under `root`; returns once `/v2/` answers 200."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        pytest.fail(f"`{REGISTRY_BINARY}` is not installed; run `make services`")
    storage = root / "data"
    storage.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for attempt in range(START_ATTEMPTS):
        address = f"127.0.0.1:{_free_port()}"
        config = root / "config.yml"
        config.write_text(_CONFIG.format(storage=storage, address=address))
        log = root / f"registry-{attempt}.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        registry = ScratchRegistry(address, storage, config, log, process)
        deadline = time.monotonic() + start_seconds
        while process.poll() is None and time.monotonic() < deadline:
            if _answers_v2(address):
                return registry
            time.sleep(0.05)  # polling /v2/, bounded by the deadline
        registry.stop()
        problems.append(f"{address}: {log.read_text(errors='replace')[-1500:]}")
    pytest.fail("a scratch registry did not start:\n" + "\n".join(problems))


@pytest.fixture(name="scratch_registry")
def scratch_registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchRegistry]:
    """A new, empty registry for this test only (delete enabled); stopped afterwards."""
    root = tmp_path_factory.mktemp("scratch-registry")
    registry = start_scratch_registry(root)
    try:
        yield registry
    finally:
        registry.stop()
        shutil.rmtree(registry.storage, ignore_errors=True)


@pytest.fixture(name="proxied_registry")
def proxied_registry_fixture(scratch_registry: ScratchRegistry) -> Iterator[RegistryProxy]:
    """A started `RegistryProxy` in front of this test's `scratch_registry`."""
    with RegistryProxy(scratch_registry.address) as proxy:
        yield proxy


def registry_manifest(ref: str, reference: str | None = None) -> dict[str, Any]:
    """The manifest (or index) of `host/repo:tag`, or of `reference` (a digest) in that repo."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    request = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{reference or tag}", headers={"Accept": MANIFEST_ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def is_attestation(entry: Mapping[str, Any]) -> bool:
    """An index entry that is buildx's provenance attestation, not an image."""
    kind = (entry.get("annotations") or {}).get("vnd.docker.reference.type")
    return bool(kind == "attestation-manifest")


def image_manifest(ref: str) -> dict[str, Any]:
    """The platform image's manifest, read independently of imgbuild: through an index (what
    engine 26 pushes) to its image entry, never the attestation's."""
    body = registry_manifest(ref)
    for entry in body.get("manifests") or ():
        if not is_attestation(entry):
            return registry_manifest(ref, str(entry["digest"]))
    return body


def registry_digest(
    address: str,
    repo: str,
    tag: str,
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 10.0,
) -> str | None:
    """The manifest digest of `repo:tag` (HEAD with the manifest Accept types); None on 404."""
    request = urllib.request.Request(
        f"http://{address}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            digest = response.headers.get("Docker-Content-Digest")
            return str(digest) if digest else None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


@dataclass(frozen=True)
class PushOutcome:
    events: list[dict[str, Any]]
    seconds: float

    @property
    def error(self) -> str | None:
        """The daemon's error (it reports errors in the stream, push() does not raise)."""
        for event in self.events:
            if "error" in event:
                return str(event["error"])
        return None

    @property
    def digest(self) -> str | None:
        for event in reversed(self.events):
            aux = event.get("aux")
            if isinstance(aux, Mapping) and "Digest" in aux:
                return str(aux["Digest"])
        return None

    @property
    def retries(self) -> int:
        """How often the daemon retried a layer upload (each "Retrying in N seconds" countdown
        counts once)."""
        count = 0
        retrying: dict[str, bool] = {}
        for event in self.events:
            layer = str(event.get("id", ""))
            now = str(event.get("status", "")).startswith("Retrying in")
            if now and not retrying.get(layer, False):
                count += 1
            retrying[layer] = now
        return count


def docker_push(
    client: Any,
    repository: str,
    tag: str,
    *,
    auth_config: Mapping[str, str] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> PushOutcome:
    """`client.api.push(...)` with the stream decoded and kept."""
    started = time.monotonic()
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"tag": tag, "stream": True, "decode": True}
    if auth_config is not None:
        kwargs["auth_config"] = dict(auth_config)
    for event in client.api.push(repository, **kwargs):
        events.append(event)
        if on_event is not None:
            on_event(event)
    return PushOutcome(events, time.monotonic() - started)


class LocalImages:
    """Local tags a test creates (retags, imported images); `cleanup()` removes exactly those
    tags (`docker rmi` without pruning parents) and nothing else."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.refs: list[str] = []

    def tag(self, source: str, repository: str, tag: str) -> str:
        ref = f"{repository}:{tag}"
        if not self.client.api.tag(source, repository, tag):
            raise RuntimeError(f"could not tag {source} as {ref}")
        self.refs.append(ref)
        return ref

    def import_random(self, repository: str, tag: str, *, size: int, seed: int) -> str:
        """A one-layer image (a file of `size` seeded random bytes, so it does not compress)."""
        data = random.Random(seed).randbytes(size)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("rig/payload.bin")
            info.size, info.mtime, info.mode = size, 0, 0o644
            tar.addfile(info, io.BytesIO(data))
        self.client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)
        ref = f"{repository}:{tag}"
        self.refs.append(ref)
        self.client.api.inspect_image(ref)  # raises if the import did not produce it
        return ref

    def cleanup(self) -> None:
        import docker.errors

        for ref in reversed(self.refs):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_image(ref, noprune=True)
        self.refs.clear()


@pytest.fixture(name="local_images")
def local_images_fixture() -> Iterator[LocalImages]:
    """Creates local tags for a test and removes exactly those afterwards."""
    import docker

    client = docker.from_env(timeout=300)
    images = LocalImages(client)
    try:
        yield images
    finally:
        images.cleanup()
        client.close()
