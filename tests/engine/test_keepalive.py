"""The registry client's kept-alive connection (engine/keepalive.py), against a real HTTP/1.1
server on loopback: one connection for many questions, a transparent reconnect when the server
dropped an idle one, redirects through urllib, and proxies respected."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buildkit.engine.keepalive import KeepAlive
from buildkit.engine.registry import RegistryClient


@dataclass
class Server:
    port: int
    connections: list[int] = field(default_factory=list)  # one entry per accepted connection
    drop_after_each: bool = False  # close silently after each answer, as an idle timeout does

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            state.connections.append(1)

        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(b"")

        def do_GET(self) -> None:
            if self.path.endswith("/moved"):
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{state.port}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = f"{self.path} auth={self.headers.get('Authorization')}".encode()
            self._answer(body)

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Docker-Content-Digest", "sha256:" + "a" * 64)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            if state.drop_after_each:
                self.close_connection = True  # no "Connection: close": the client cannot know

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_many_questions_share_one_connection(server: Server) -> None:
    conn = KeepAlive("http", server.host, timeout=5)
    for i in range(5):
        status, headers, body = conn.request("GET", f"/v2/x/{i}", {})
        assert status == 200
        assert body.startswith(f"/v2/x/{i}".encode())
        assert headers["Docker-Content-Digest"] == "sha256:" + "a" * 64
    assert conn.request("HEAD", "/v2/x/manifests/1", {})[2] == b""
    assert len(server.connections) == 1


def test_a_dropped_idle_connection_is_reopened_transparently(server: Server) -> None:
    server.drop_after_each = True
    conn = KeepAlive("http", server.host, timeout=5)
    for i in range(3):
        assert conn.request("GET", f"/v2/y/{i}", {})[0] == 200
    assert len(server.connections) == 3


def test_registry_client_answers_through_one_connection(server: Server) -> None:
    client = RegistryClient(server.host, auth=None)
    for tag in ("a", "b", "c"):
        assert client.exists("app", tag) == "sha256:" + "a" * 64
    assert len(server.connections) == 1


def test_a_redirect_is_followed_by_urllib_without_the_credential(server: Server) -> None:
    client = RegistryClient(server.host, auth=None)
    client._bearer["app"] = "secret-token"  # what an earlier 401 challenge would have set
    body = client.blob("app", "moved")
    assert body.startswith(b"/elsewhere ")
    assert b"secret-token" not in body  # left the registry's host:port, so no Authorization
    assert body.endswith(b"auth=None")


def test_a_proxy_from_the_environment_keeps_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert not KeepAlive.usable("https", "123.dkr.ecr.eu-west-1.amazonaws.com")
    monkeypatch.setenv("no_proxy", ".amazonaws.com")
    assert KeepAlive.usable("https", "123.dkr.ecr.eu-west-1.amazonaws.com")
    assert KeepAlive.usable("http", "127.0.0.1:5000")  # no http proxy set
