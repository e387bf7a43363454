"""The registry test rig works for real: a scratch `docker-registry`, the `RegistryProxy` in
front of it (streaming, auth, token expiry, faults, counters) and pushes by the real daemon."""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import resource
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import DevEnv
from tests.registry_fixtures import (  # noqa: F401 - the *_fixture imports are fixtures
    LocalImages,
    ScratchRegistry,
    docker_push,
    local_images_fixture,
    proxied_registry_fixture,
    registry_digest,
    scratch_registry_fixture,
)
from tests.registry_proxy import RESET, FaultWhen, RegistryProxy

pytestmark = [pytest.mark.docker]

AWS = {"username": "AWS", "password": "tok1"}
TINY = 1_500_000  # bytes of the one-layer test image: pushes in well under a second


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _request(
    address: str,
    method: str,
    path: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(address, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def docker_client(dev: DevEnv) -> Iterator[Any]:
    import docker

    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="module")
def base_image(dev: DevEnv, docker_client: Any) -> str:
    """The dev base image (127.0.0.1:5000/debian:bookworm), pulled from the dev registry if the
    daemon does not have it."""
    import docker.errors

    try:
        docker_client.api.inspect_image(dev.base_image)
    except docker.errors.ImageNotFound:
        repository, _, tag = dev.base_image.rpartition(":")
        docker_client.api.pull(repository, tag=tag)
    return dev.base_image


# -- the proxy on its own (plain HTTP against the scratch registry) ------------------------------


def test_bodies_stream_both_ways_and_locations_point_at_the_proxy(
    scratch_registry: ScratchRegistry, proxied_registry: RegistryProxy
) -> None:
    proxy = proxied_registry
    payload = random.Random(3).randbytes(3 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    status, headers, _ = _request(proxy.address, "POST", "/v2/rig/raw/blobs/uploads/")
    assert status == 202
    location = headers["Location"]
    assert location.startswith(f"http://{proxy.address}/v2/rig/raw/blobs/uploads/")
    # First part chunked (as the daemon sends layers), the rest with a Content-Length.
    head, tail = payload[:2_000_000], payload[2_000_000:]
    pieces = (head[i : i + 100_000] for i in range(0, len(head), 100_000))
    upload = urlsplit(location)
    status, headers, _ = _request(
        proxy.address, "PATCH", f"{upload.path}?{upload.query}", body=pieces
    )
    assert status == 202, headers
    upload = urlsplit(headers["Location"])
    status, _, _ = _request(
        proxy.address, "PUT", f"{upload.path}?{upload.query}&digest={digest}", body=tail
    )
    assert status == 201
    status, headers, _ = _request(proxy.address, "HEAD", f"/v2/rig/raw/blobs/{digest}")
    assert (status, headers["Content-Length"]) == (200, str(len(payload)))
    status, _, body = _request(proxy.address, "GET", f"/v2/rig/raw/blobs/{digest}")
    assert status == 200
    assert body == payload

    stats = proxy.stats
    assert stats.chunked_bodies == 1
    assert stats.bytes_received == stats.bytes_forwarded == len(payload)
    assert scratch_registry.blob_bytes() == len(payload)
    assert [(e.method, e.status) for e in stats.log] == [
        ("POST", 202),
        ("PATCH", 202),
        ("PUT", 201),
        ("HEAD", 200),
        ("GET", 200),
    ]
    assert stats.methods == {"POST": 1, "PATCH": 1, "PUT": 1, "HEAD": 1, "GET": 1}

    # A Location that names the upstream (here: because the client sent the upstream's Host)
    # is rewritten to the proxy's address.
    status, headers, _ = _request(
        proxy.address,
        "POST",
        "/v2/rig/raw/blobs/uploads/",
        headers={"Host": scratch_registry.address},
    )
    assert status == 202
    assert headers["Location"].startswith(f"http://{proxy.address}/v2/")


def test_basic_auth_and_token_expiry(proxied_registry: RegistryProxy) -> None:
    proxy = proxied_registry
    assert _request(proxy.address, "GET", "/v2/")[0] == 200
    proxy.require_basic("AWS", {"tok1"})
    status, headers, body = _request(proxy.address, "GET", "/v2/")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="imgbuild-test"'
    assert b"UNAUTHORIZED" in body
    assert _request(proxy.address, "GET", "/v2/", headers=_basic("AWS", "tok1"))[0] == 200
    assert _request(proxy.address, "GET", "/v2/", headers=_basic("aws", "tok1"))[0] == 401
    assert _request(proxy.address, "GET", "/v2/", headers=_basic("AWS", "nope"))[0] == 401
    # A rejected PATCH body is read and discarded, the connection stays usable.
    status, _, _ = _request(proxy.address, "PATCH", "/v2/x/blobs/uploads/u", body=b"x" * 300_000)
    assert status == 401

    proxy.expire_after(2, "tok2")
    tok1 = [_request(proxy.address, "GET", "/v2/", headers=_basic("AWS", "tok1"))[0] for _ in "abc"]
    assert tok1 == [200, 200, 401]
    assert _request(proxy.address, "GET", "/v2/", headers=_basic("AWS", "tok2"))[0] == 200

    proxy.require_basic("AWS", None)
    assert _request(proxy.address, "GET", "/v2/")[0] == 200
    stats = proxy.stats
    assert (stats.authenticated, stats.auth_failures) == (4, 5)
    assert stats.bytes_received == 300_000
    assert stats.bytes_forwarded == 0


def _statuses(address: str, n: int) -> list[int]:
    out = []
    for _ in range(n):
        try:
            out.append(_request(address, "GET", "/v2/")[0])
        except (ConnectionError, http.client.HTTPException):
            out.append(RESET)
    return out


def test_faults_are_deterministic_bounded_and_filtered(
    scratch_registry: ScratchRegistry, proxied_registry: RegistryProxy
) -> None:
    proxy = proxied_registry
    proxy.inject_faults(ratio=0.5, kinds=("500", "reset"), seed=11)
    first = _statuses(proxy.address, 20)
    proxy.inject_faults(ratio=0.5, kinds=("500", "reset"), seed=11)
    assert _statuses(proxy.address, 20) == first
    assert {500, RESET, 200} == set(first)
    stats = proxy.stats
    assert stats.faults_injected == 2 * (20 - first.count(200))
    assert stats.faults_by_kind == {"500": 2 * first.count(500), "reset": 2 * first.count(RESET)}
    assert [e.status for e in stats.log] == first + first

    proxy.inject_faults(ratio=1.0, kinds=("500",), max_faults=2)
    assert _statuses(proxy.address, 4) == [500, 500, 200, 200]
    proxy.inject_faults(ratio=1.0, kinds=("reset",), methods=("PUT",))
    assert _statuses(proxy.address, 2) == [200, 200]
    proxy.inject_faults(ratio=1.0, kinds=("reset",), path_regex=r"/manifests/")
    assert _statuses(proxy.address, 2) == [200, 200]
    proxy.clear_faults()

    # "before": nothing reaches the registry; "after": it is applied, the answer is lost.
    cases: tuple[tuple[FaultWhen, bool], ...] = (("before", False), ("after", True))
    for when, stored in cases:
        blob = f"{when} fault".encode()
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, headers, _ = _request(proxy.address, "POST", "/v2/rig/f/blobs/uploads/")
        assert status == 202
        upload = urlsplit(headers["Location"])
        proxy.inject_faults(ratio=1.0, kinds=("reset",), methods=("PUT",), when=when)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _request(proxy.address, "PUT", f"{upload.path}?{upload.query}&digest={digest}", blob)
        proxy.clear_faults()
        direct = _request(scratch_registry.address, "HEAD", f"/v2/rig/f/blobs/{digest}")[0]
        assert direct == (200 if stored else 404), when


def test_stop_is_prompt_with_open_connections(scratch_registry: ScratchRegistry) -> None:
    proxy = RegistryProxy(scratch_registry.address).start()
    address = proxy.address
    idle = http.client.HTTPConnection(address, timeout=10)
    idle.request("GET", "/v2/")
    assert idle.getresponse().read() == b"{}"  # keep-alive: the connection stays open
    stalled = socket.create_connection(("127.0.0.1", int(address.split(":")[1])), timeout=10)
    stalled.sendall(
        b"PATCH /v2/x/blobs/uploads/u HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n"
    )
    _request(address, "GET", "/v2/")  # the stalled request is being handled by now
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2.0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(address.split(":")[1])), timeout=5)
    idle.close()
    stalled.close()


def test_upstream_down_is_a_502(
    scratch_registry: ScratchRegistry, proxied_registry: RegistryProxy
) -> None:
    scratch_registry.stop()
    status, _, body = _request(proxied_registry.address, "PUT", "/v2/x/manifests/t", b"{}")
    assert status == 502
    assert b"upstream failed" in body
    assert proxied_registry.stats.log[-1] == ("PUT", "/v2/x/manifests/t", 502)


# -- the real daemon through the proxy -----------------------------------------------------------


def test_push_through_proxy_matches_upstream(
    scratch_registry: ScratchRegistry,
    proxied_registry: RegistryProxy,
    docker_client: Any,
    local_images: LocalImages,
    base_image: str,
) -> None:
    proxy = proxied_registry
    repository = f"{proxy.address}/rig/debian"
    local_images.tag(base_image, repository, "t1")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    outcome = docker_push(docker_client, repository, "t1")
    peak_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert outcome.error is None, outcome.events[-3:]

    through_proxy = registry_digest(proxy.address, "rig/debian", "t1")
    direct = registry_digest(scratch_registry.address, "rig/debian", "t1")
    assert through_proxy is not None
    assert through_proxy == direct == outcome.digest

    stats = proxy.stats
    assert stats.faults_injected == 0
    assert stats.chunked_bodies >= 1  # the daemon streams layers with chunked PATCHes
    assert {"PATCH", "PUT", "HEAD"} <= set(stats.methods)
    # Every byte the registry stores (layer, config, manifest) went through the proxy once.
    stored = scratch_registry.blob_bytes()
    assert stored > 30_000_000
    assert stats.bytes_received == stats.bytes_forwarded == stored
    # ...without being held in memory: the peak RSS did not grow by anything near the layer.
    assert peak_growth < stored // 2, (peak_growth, stored)


def test_push_needs_basic_auth(
    scratch_registry: ScratchRegistry,
    proxied_registry: RegistryProxy,
    docker_client: Any,
    local_images: LocalImages,
) -> None:
    proxy = proxied_registry
    proxy.require_basic("AWS", {"tok1"})
    repository = f"{proxy.address}/rig/tiny"
    local_images.import_random(repository, "t1", size=TINY, seed=1)

    denied = docker_push(docker_client, repository, "t1")
    assert denied.error is not None
    assert "basic auth" in denied.error or "authentication required" in denied.error
    assert registry_digest(scratch_registry.address, "rig/tiny", "t1") is None

    pushed = docker_push(docker_client, repository, "t1", auth_config=AWS)
    assert pushed.error is None, pushed.events[-3:]
    direct = registry_digest(scratch_registry.address, "rig/tiny", "t1")
    assert direct == pushed.digest
    assert registry_digest(proxy.address, "rig/tiny", "t1", auth=("AWS", "tok1")) == direct
    stats = proxy.stats
    assert stats.auth_failures >= 1
    assert stats.statuses[401] >= 1


def test_token_expiring_mid_push(
    scratch_registry: ScratchRegistry,
    proxied_registry: RegistryProxy,
    docker_client: Any,
    local_images: LocalImages,
) -> None:
    proxy = proxied_registry
    proxy.require_basic("AWS", {"tok1"})
    proxy.expire_after(3, "tok2")
    repository = f"{proxy.address}/rig/tiny"
    local_images.import_random(repository, "t1", size=TINY, seed=2)

    expired = docker_push(docker_client, repository, "t1", auth_config=AWS)
    assert expired.error == "unauthorized: authentication required"
    assert expired.retries == 0  # an auth error is final for the daemon (no 5-20 s retry waits)
    stats = proxy.stats
    assert stats.authenticated == 3  # the token died mid-push, after 3 requests
    # The daemon pushes the layer and the config side by side, so which blob request came first,
    # and which one closed the log, varies from run to run. What holds in any order: a blob
    # request got through with the old token (the push had started), and a 401 came after it.
    blob_passed = [
        i for i, e in enumerate(stats.log) if "/blobs/" in e.path and e.status not in (401, RESET)
    ]
    assert blob_passed, stats.log
    assert any(e.status == 401 for e in stats.log[blob_passed[0] + 1 :]), stats.log

    again = docker_push(docker_client, repository, "t1", auth_config=AWS)
    assert again.error == "unauthorized: authentication required"
    assert registry_digest(scratch_registry.address, "rig/tiny", "t1") is None

    renewed = docker_push(
        docker_client, repository, "t1", auth_config={"username": "AWS", "password": "tok2"}
    )
    assert renewed.error is None, renewed.events[-3:]
    direct = registry_digest(scratch_registry.address, "rig/tiny", "t1")
    assert direct == renewed.digest
    assert registry_digest(proxy.address, "rig/tiny", "t1", auth=("AWS", "tok2")) == direct


def test_push_under_faults_then_clean(
    scratch_registry: ScratchRegistry,
    proxied_registry: RegistryProxy,
    docker_client: Any,
    local_images: LocalImages,
) -> None:
    proxy = proxied_registry
    repository = f"{proxy.address}/rig/tiny"
    local_images.import_random(repository, "t1", size=TINY, seed=3)
    # The daemon waits 5 s, 10 s, ... between layer upload attempts: max_faults keeps it short.
    proxy.inject_faults(ratio=0.3, kinds=("500", "reset"), seed=4, max_faults=2)
    faulty = docker_push(docker_client, repository, "t1")
    stats = proxy.stats
    assert 1 <= stats.faults_injected <= 2
    assert sum(stats.faults_by_kind.values()) == stats.faults_injected
    assert faulty.seconds < 30
    if faulty.error is None:  # the daemon's retries got it through
        assert registry_digest(scratch_registry.address, "rig/tiny", "t1") == faulty.digest

    proxy.clear_faults()
    clean = docker_push(docker_client, repository, "t1")
    assert clean.error is None, clean.events[-3:]
    assert proxy.stats.faults_injected == stats.faults_injected
    direct = registry_digest(scratch_registry.address, "rig/tiny", "t1")
    assert direct == clean.digest
    assert registry_digest(proxy.address, "rig/tiny", "t1") == direct
