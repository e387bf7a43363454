"""The registry client connects to a host alone: a registry's path prefix (`127.0.0.1:5000/team`)
or a bad port is a config error at once (exit 3), never a request that fails, is retried and is
then blamed on the network ("unreachable")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buildkit.engine import reference
from buildkit.engine.registry import RegistryClient
from buildkit.errors import ConfigError, InvalidReferenceError

HOSTS = ["127.0.0.1:5000", "localhost", "[::1]:5000", "registry.example.com", "r.example.com:443"]


@pytest.mark.parametrize("host", HOSTS)
def test_check_host_takes_a_host_alone(host: str) -> None:
    assert reference.check_host(host) == host


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1:5000/team", "without a scheme or a path"),
        ("ghcr.io/org", "without a scheme or a path"),
        ("127.0.0.1:50x0", "without a scheme or a path"),
        ("https://registry.example.com", "without a scheme or a path"),
        ("127.0.0.1:70000", "has port 70000"),
        ("127.0.0.1:0", "has port 0"),
        ("", "without a scheme or a path"),
    ],
)
def test_check_host_refuses_what_a_url_cannot_hold(host: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        reference.check_host(host)
    assert reason in info.value.reason


@pytest.mark.parametrize("registry", ["127.0.0.1:5000/team", "ghcr.io/org", "r.example.com/a/b"])
def test_join_registry_undoes_split_registry(registry: str) -> None:
    assert reference.join_registry(*reference.split_registry(registry)) == registry


@pytest.mark.parametrize("host", ["127.0.0.1:5000/team", "127.0.0.1:50x0/team", "127.0.0.1:50x0"])
def test_a_client_for_a_host_with_a_path_or_bad_port_is_a_config_error_at_once(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        RegistryClient(host, auth=None).exists("team/app", "latest")
    assert time.monotonic() - started < 1
    assert info.value.exit_code == 3
    assert host in info.value.message
    assert "\n" not in info.value.message
    assert "retrying" not in capsys.readouterr().err


class _Uploads:
    """A registry that hands out an upload session at a URL with a bad port."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                requests.append(f"POST {self.path}")
                self.send_response(202)
                self.send_header("Location", "http://127.0.0.1:50x0/v2/team/app/blobs/uploads/1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_PUT(self) -> None:
                requests.append(f"PUT {self.path}")
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


@pytest.fixture
def uploads() -> Iterator[_Uploads]:
    fake = _Uploads()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_a_session_url_with_a_bad_port_is_not_retried(
    uploads: _Uploads, capsys: pytest.CaptureFixture[str]
) -> None:
    client = RegistryClient(uploads.host, auth=None)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        client.upload_blob("team/app", "sha256:" + "0" * 64, b"data")
    assert time.monotonic() - started < 1
    assert "50x0" in info.value.message
    assert "unreachable" not in info.value.message
    assert uploads.requests == ["POST /v2/team/app/blobs/uploads/"]  # one session, no retry
    assert "retrying" not in capsys.readouterr().err
