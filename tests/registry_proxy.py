"""A controllable HTTP reverse proxy in front of a test registry (Docker distribution).

`RegistryProxy` listens on 127.0.0.1 (a free port), forwards every request to an upstream
registry on the loopback and streams bodies both ways (Content-Length or chunked request bodies,
64 KiB at a time, so 100 MB layers are never held in memory). The client's Host header is kept,
so distribution builds upload `Location`s that point at the proxy; absolute `Location`s that
still name the upstream are rewritten as well.

Everything below can be changed at runtime from the test thread:

* auth: `require_basic(user, {"tok1"})` answers requests without valid Basic credentials with
  401 + `WWW-Authenticate: Basic realm="imgbuild-test"` (what ECR does for an expired token);
  `expire_after(n, "tok2")` lets n more authenticated requests through, then only "tok2" works.
* faults: `inject_faults(ratio, kinds, seed, ...)` answers a deterministic share of requests
  with 500 or resets the connection (RST, no response), before or after forwarding upstream.
* counters: `stats` is a snapshot (requests, faults, per-method counts, PUT/PATCH body
  bytes, a bounded log of (method, path, status)).

Request handling order: fault draw ("before" faults hit even unauthenticated requests, like a
network failure would) → auth → forward → ("after" faults replace the upstream's response).
Decisions come from one seeded RNG in arrival order: for a sequential client the sequence of
faults is reproducible; with concurrent requests only the sequence of draws is.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import ipaddress
import json
import random
import re
import socket
import socketserver
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

__all__ = ["RESET", "FaultKind", "FaultWhen", "LogEntry", "ProxyStats", "RegistryProxy"]

FaultKind = Literal["500", "reset"]
FaultWhen = Literal["before", "after"]

RESET = 0
"""Status recorded in the log when the connection was dropped without any response."""

REALM = "imgbuild-test"
AUTH_DETAIL = "imgbuild-test proxy: Basic credentials missing, wrong or expired"
CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 120.0
IDLE_TIMEOUT = 120.0  # a keep-alive client connection idle this long is closed
DRAIN_SECONDS = 120.0  # longest we read (and discard) a body we answer without forwarding
STOP_SECONDS = 2.0
MAX_TRAILER_LINES = 64
MAX_CHUNK_LINE = 1024

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",  # the 100-continue handshake is done with the client; never forwarded
    }
)
_BODY_COUNTED = frozenset({"PUT", "PATCH"})


# What the distribution registry (Go's net/http) answers to a TLS ClientHello on its plain port.
TLS_PROBE_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request"
)


class LogEntry(NamedTuple):
    method: str
    path: str  # without the query string
    status: int  # HTTP status sent to the client; RESET (0) when none was


@dataclass(frozen=True)
class ProxyStats:
    requests: int = 0
    faults_injected: int = 0
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    auth_failures: int = 0
    authenticated: int = 0
    bytes_received: int = 0
    """PUT/PATCH body bytes read from clients, including bodies of rejected/faulted requests."""
    bytes_forwarded: int = 0
    """PUT/PATCH body bytes sent on to the upstream."""
    chunked_bodies: int = 0
    """Requests whose body came with Transfer-Encoding: chunked (the daemon streams uploads)."""
    tls_probes: int = 0
    """Connections that opened with a TLS handshake (the daemon tries https first) and were
    closed at once; they are not counted as requests."""
    log: tuple[LogEntry, ...] = ()


@dataclass
class _FaultPlan:
    ratio: float
    kinds: tuple[FaultKind, ...]
    rng: random.Random
    max_faults: int | None
    methods: frozenset[str] | None
    path_re: re.Pattern[str] | None
    when: FaultWhen
    injected: int = 0


@dataclass
class _Counters:
    requests: int = 0
    faults: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    auth_failures: int = 0
    authenticated: int = 0
    bytes_received: int = 0
    bytes_forwarded: int = 0
    chunked_bodies: int = 0
    tls_probes: int = 0


class _ClientGoneError(Exception):
    """The client closed its connection or sent a malformed body mid-request."""


class _RequestBody:
    """The request body as a stream of <= CHUNK byte pieces, decoded from either framing."""

    def __init__(self, handler: _Handler) -> None:
        self._rfile = handler.rfile
        self._proxy = handler.server.proxy
        self._count = handler.command in _BODY_COUNTED
        headers = handler.headers
        encodings = [e.strip().lower() for e in headers.get("Transfer-Encoding", "").split(",")]
        encodings = [e for e in encodings if e]
        self.chunked = bool(encodings)
        self.length: int | None = None
        if self.chunked:
            if encodings != ["chunked"]:
                raise ValueError(f"unsupported Transfer-Encoding {encodings}")
            self._proxy._add(chunked_bodies=1)
        else:
            raw = headers.get("Content-Length")
            self.length = int(raw) if raw is not None else 0
            if self.length < 0:
                raise ValueError("negative Content-Length")
        self.consumed = False

    def __iter__(self) -> Iterator[bytes]:
        if self.consumed:
            return
        self.consumed = True
        pieces = self._chunked() if self.chunked else self._sized(self.length or 0)
        for piece in pieces:
            if self._count:
                self._proxy._add(bytes_received=len(piece))
            yield piece

    def _read(self, n: int) -> bytes:
        data = self._rfile.read(n)
        if len(data) != n:
            raise _ClientGoneError("body ended early")
        return data

    def _sized(self, remaining: int) -> Iterator[bytes]:
        while remaining > 0:
            piece = self._rfile.read1(min(CHUNK, remaining))
            if not piece:
                raise _ClientGoneError("body ended early")
            remaining -= len(piece)
            yield piece

    def _chunked(self) -> Iterator[bytes]:
        while True:  # ends at the 0-size chunk; every chunk consumes input, EOF raises
            line = self._rfile.readline(MAX_CHUNK_LINE)
            if not line.endswith(b"\n"):
                raise _ClientGoneError("bad chunk size line")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _ClientGoneError(f"bad chunk size {line!r}") from exc
            if size == 0:
                break
            yield from self._sized(size)
            if self._read(2) != b"\r\n":
                raise _ClientGoneError("chunk not followed by CRLF")
        for _ in range(MAX_TRAILER_LINES):
            trailer = self._rfile.readline(MAX_CHUNK_LINE)
            if not trailer:
                raise _ClientGoneError("body ended in the trailer")
            if trailer in (b"\r\n", b"\n"):
                return
        raise _ClientGoneError("too many trailer lines")

    def drain(self, deadline: float) -> bool:
        """Read and discard the rest; False if it took longer than the deadline."""
        return all(time.monotonic() <= deadline for _ in self)


def _error_body(code: str, message: str, detail: str | None = None) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: _Server

    # -- connection level ------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)

    def handle(self) -> None:
        try:
            first = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":  # a TLS ClientHello on a plain-HTTP port
            # Answer as the registry itself (Go's net/http) does, measured: a plain 400. Go's
            # TLS client then reports "server gave HTTP response to HTTPS client", the one error
            # on which the containerd image store (Docker 26) falls back to plain HTTP for an
            # insecure registry; Docker 20.10 falls back on any error, a reset included.
            self.server.proxy._add(tls_probes=1)
            with contextlib.suppress(OSError):
                self.connection.sendall(TLS_PROBE_ANSWER)
            self.close_connection = True
            return
        if first:
            with contextlib.suppress(OSError, _ClientGoneError):
                super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the proxy keeps its own log; stderr noise would hide test output

    def _reset_connection(self) -> None:
        """Drop the connection with an RST (SO_LINGER 0) and without sending anything."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.rfile.close()  # drop the makefile() reference, else close() keeps the fd open
        with contextlib.suppress(OSError):
            self.connection.close()

    # -- request level ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._proxy_request()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _proxy_request(self) -> None:
        proxy = self.server.proxy
        method = self.command
        path = urlsplit(self.path).path
        proxy._count_request(method)
        try:
            body = _RequestBody(self)
        except ValueError as exc:
            self.close_connection = True
            self._send_error_json(400, "BAD_REQUEST", str(exc), path)
            return
        try:
            self._serve(proxy, method, path, body)
        except _ClientGoneError:
            proxy._log(method, path, RESET)
            self._reset_connection()

    def _serve(self, proxy: RegistryProxy, method: str, path: str, body: _RequestBody) -> None:
        fault = proxy._draw_fault(method, path, "before")
        if fault is not None:
            self._inject(fault, method, path, body)
            return
        if not proxy._authorize(self.headers.get("Authorization")):
            self._drain(body)
            self._send_error_json(
                401,
                "UNAUTHORIZED",
                "authentication required",
                path,
                detail=proxy._auth_detail,
                extra=[("WWW-Authenticate", f'Basic realm="{REALM}"')],
            )
            return
        fault = proxy._draw_fault(method, path, "after")
        try:
            conn, sock, response = self._forward(body)
        except (OSError, http.client.HTTPException) as exc:
            self.close_connection = True
            if not body.consumed:
                self._drain(body)
            self._send_error_json(502, "UNKNOWN", f"upstream failed: {exc}", path)
            return
        try:
            if fault is not None:  # the upstream applied the request; the client never learns
                self._discard(response)
                self._inject(fault, method, path, body)
            else:
                self._relay(response, path)
        finally:
            proxy._track(sock, add=False)
            response.close()
            conn.close()

    def _inject(self, kind: FaultKind, method: str, path: str, body: _RequestBody) -> None:
        proxy = self.server.proxy
        proxy._count_fault(kind)
        if kind == "reset":
            proxy._log(method, path, RESET)
            self._reset_connection()
            return
        self._drain(body)
        self._send_error_json(500, "UNKNOWN", "injected fault (imgbuild test proxy)", path)

    def _drain(self, body: _RequestBody) -> None:
        if not body.drain(time.monotonic() + DRAIN_SECONDS):
            self.close_connection = True

    def _send_error_json(
        self,
        status: int,
        code: str,
        message: str,
        path: str,
        *,
        detail: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        payload = _error_body(code, message, detail)
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.server.proxy._log(self.command, path, status)
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(
        self, body: _RequestBody
    ) -> tuple[http.client.HTTPConnection, socket.socket | None, http.client.HTTPResponse]:
        """Send the request upstream, body streamed; returns the connection, its socket (kept
        apart: http.client drops `conn.sock` when the response will close) and the response."""
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT
        )
        sock: socket.socket | None = None
        try:
            conn.connect()
            sock = conn.sock
            proxy._track(sock, add=True)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            dropped = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
            for name, value in self.headers.items():
                lname = name.lower()
                if lname in _HOP_BY_HOP or lname in dropped:
                    continue
                if lname == "content-length" and body.chunked:
                    continue
                conn.putheader(name, value)
            if "Host" not in self.headers:
                conn.putheader("Host", proxy.address)
            if body.chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            counted = self.command in _BODY_COUNTED
            for piece in body:
                if body.chunked:
                    conn.send(b"%x\r\n%b\r\n" % (len(piece), piece))
                else:
                    conn.send(piece)
                if counted:
                    proxy._add(bytes_forwarded=len(piece))
            if body.chunked:
                conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
        except BaseException:
            proxy._track(sock, add=False)
            conn.close()
            raise
        return conn, sock, response

    @staticmethod
    def _discard(response: http.client.HTTPResponse) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            while response.read(CHUNK):
                pass

    def _rewrite_location(self, value: str) -> str:
        proxy = self.server.proxy
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc in proxy._upstream_names:
            return f"http://{proxy.address}{value[len(parts.scheme) + 3 + len(parts.netloc) :]}"
        return value

    def _relay(self, response: http.client.HTTPResponse, path: str) -> None:
        framing = self._relay_head(response)
        self.server.proxy._log(self.command, path, response.status)
        if framing == "none":
            return
        try:
            while True:  # ends at the upstream body's end; each pass consumes bytes
                piece = response.read1(CHUNK)
                if not piece:
                    break
                if framing == "chunked":
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
            if framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")
        except http.client.HTTPException:
            self._reset_connection()  # upstream body broke off: the client must not wait

    def _relay_head(
        self, response: http.client.HTTPResponse
    ) -> Literal["none", "length", "chunked", "close"]:
        """Send the upstream's status and headers; return how the body is framed."""
        status = response.status
        no_body = self.command == "HEAD" or status in (204, 304) or status < 200
        length: str | None = None
        self.send_response_only(status, response.reason)
        for name, value in response.getheaders():
            lname = name.lower()
            if lname in _HOP_BY_HOP:
                continue
            if lname == "content-length" and not no_body:
                length = value
                continue
            self.send_header(name, self._rewrite_location(value) if lname == "location" else value)
        framing: Literal["none", "length", "chunked", "close"] = "none"
        if not no_body:
            if length is not None:
                framing = "length"
                self.send_header("Content-Length", length)
            elif self.request_version == "HTTP/1.1":
                framing = "chunked"
                self.send_header("Transfer-Encoding", "chunked")
            else:
                framing = "close"
                self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        return framing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, proxy: RegistryProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); not needed on loopback.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connection-level errors are expected (resets, stop()); they are not test failures


def _loopback_upstream(upstream: str) -> tuple[str, int]:
    parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"upstream must be http://127.0.0.1:PORT, got {upstream!r}")
    host = parts.hostname
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"upstream must be on the loopback, got {upstream!r}")
    return host, parts.port


class RegistryProxy:
    """Reverse proxy for a registry on the loopback; see the module docstring.

    >>> with RegistryProxy("127.0.0.1:5000") as proxy:
    ...     proxy.require_basic("AWS", {"tok1"})
    ...     proxy.address  # "127.0.0.1:PORT": push to f"{proxy.address}/repo:tag"
    """

    def __init__(self, upstream: str, *, log_size: int = 2000) -> None:
        self.upstream_host, self.upstream_port = _loopback_upstream(upstream)
        self._upstream_names = {
            f"{self.upstream_host}:{self.upstream_port}",
            f"127.0.0.1:{self.upstream_port}",
            f"localhost:{self.upstream_port}",
        }
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._log_entries: deque[LogEntry] = deque(maxlen=log_size)
        self._username: str | None = None
        self._passwords: frozenset[str] | None = None
        self._expiry: tuple[int, str] | None = None
        self._auth_detail: str | None = AUTH_DETAIL
        self._faults: _FaultPlan | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The running proxy's "127.0.0.1:PORT"."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"127.0.0.1:{self._server.server_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> RegistryProxy:
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"registry-proxy-{self._server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open connection (client and upstream side); < 2 s."""
        server, thread = self._server, self._thread
        if server is None:
            return
        deadline = time.monotonic() + STOP_SECONDS * 0.9
        server.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:  # handler threads notice the shut sockets at once
            with self._lock:
                if not self._sockets:
                    break
            time.sleep(0.01)  # polling the handler threads' exit, bounded by the deadline
        self._server = None
        self._thread = None

    def __enter__(self) -> RegistryProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- auth --------------------------------------------------------------------------------

    def require_basic(
        self,
        username: str | None,
        passwords: Iterable[str] | None,
        *,
        detail: str | None = AUTH_DETAIL,
    ) -> None:
        """Demand Basic auth as `username` with any of `passwords`; None turns auth off.

        Rejected requests get 401, `WWW-Authenticate: Basic realm="imgbuild-test"` and the
        error body {"code": "UNAUTHORIZED", "message": "authentication required", "detail":
        detail}. With a detail the 20.10 daemon fails the push at once ("unauthorized:
        authentication required"); with `detail=None` (distribution's own body, byte for byte)
        its client turns the error into a bare error code that the daemon retries: each layer
        upload is tried 5 times, 5+10+15+20 s apart, before the push fails ("unauthorized").

        Also cancels a pending `expire_after`."""
        with self._lock:
            self._auth_detail = detail
            if passwords is None:
                self._username, self._passwords = None, None
            else:
                if username is None:
                    raise ValueError("a username is needed when passwords are given")
                self._username, self._passwords = username, frozenset(passwords)
            self._expiry = None

    def expire_after(self, n_requests: int, new_password: str) -> None:
        """After `n_requests` more authenticated requests, the valid password(s) stop working
        and only `new_password` is accepted (an ECR token expiring mid-run). 0 = right now."""
        if n_requests < 0:
            raise ValueError("n_requests must be >= 0")
        with self._lock:
            if self._passwords is None:
                raise RuntimeError("call require_basic() first")
            if n_requests == 0:
                self._passwords, self._expiry = frozenset({new_password}), None
            else:
                self._expiry = (n_requests, new_password)

    def _authorize(self, header: str | None) -> bool:
        with self._lock:
            if self._passwords is None:
                return True
            ok = False
            scheme, _, token = (header or "").partition(" ")
            if scheme.lower() == "basic":
                try:
                    user, sep, password = base64.b64decode(token.strip()).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    sep = ""
                ok = bool(sep) and user == self._username and password in self._passwords
            if not ok:
                self._counters.auth_failures += 1
                return False
            self._counters.authenticated += 1
            if self._expiry is not None:
                left, new_password = self._expiry
                if left <= 1:
                    self._passwords, self._expiry = frozenset({new_password}), None
                else:
                    self._expiry = (left - 1, new_password)
            return True

    # -- faults ------------------------------------------------------------------------------

    def inject_faults(
        self,
        ratio: float = 0.2,
        kinds: Iterable[FaultKind] = ("500", "reset"),
        seed: int = 1,
        max_faults: int | None = None,
        methods: Iterable[str] | None = None,
        path_regex: str | None = None,
        when: FaultWhen = "before",
    ) -> None:
        """Answer `ratio` of the matching requests with a fault drawn from `kinds`:

        * "500": a distribution-style JSON 500 (the request body is read and discarded).
        * "reset": the connection is closed with an RST and no response.

        `when="before"`: nothing reaches the upstream (nothing half-applied). `when="after"`:
        the request is forwarded and applied, then the upstream's answer is replaced by the
        fault (a lost response). Only requests whose method is in `methods` and whose path
        (without query) matches `path_regex` (re.search) are drawn for; at most `max_faults`
        are injected. Replaces any previous plan."""
        kinds = tuple(kinds)
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be within [0, 1]")
        if not kinds or any(k not in ("500", "reset") for k in kinds):
            raise ValueError(f"kinds must be a non-empty subset of ('500', 'reset'): {kinds}")
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if max_faults is not None and max_faults < 0:
            raise ValueError("max_faults must be >= 0")
        plan = _FaultPlan(
            ratio=ratio,
            kinds=kinds,
            rng=random.Random(seed),
            max_faults=max_faults,
            methods=None if methods is None else frozenset(m.upper() for m in methods),
            path_re=None if path_regex is None else re.compile(path_regex),
            when=when,
        )
        with self._lock:
            self._faults = plan

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = None

    def _draw_fault(self, method: str, path: str, stage: FaultWhen) -> FaultKind | None:
        with self._lock:
            plan = self._faults
            if plan is None or plan.when != stage:
                return None
            if plan.max_faults is not None and plan.injected >= plan.max_faults:
                return None
            if plan.methods is not None and method not in plan.methods:
                return None
            if plan.path_re is not None and not plan.path_re.search(path):
                return None
            if plan.rng.random() >= plan.ratio:
                return None
            plan.injected += 1  # reserved now so concurrent requests respect max_faults
            return plan.rng.choice(plan.kinds)

    # -- counters ----------------------------------------------------------------------------

    @property
    def stats(self) -> ProxyStats:
        """A snapshot of the counters (a new object on every access)."""
        with self._lock:
            c = self._counters
            return ProxyStats(
                requests=c.requests,
                faults_injected=c.faults,
                faults_by_kind=dict(c.faults_by_kind),
                methods=dict(c.methods),
                statuses=dict(c.statuses),
                auth_failures=c.auth_failures,
                authenticated=c.authenticated,
                bytes_received=c.bytes_received,
                bytes_forwarded=c.bytes_forwarded,
                chunked_bodies=c.chunked_bodies,
                tls_probes=c.tls_probes,
                log=tuple(self._log_entries),
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._counters = _Counters()
            self._log_entries.clear()

    def _count_request(self, method: str) -> None:
        with self._lock:
            self._counters.requests += 1
            self._counters.methods[method] += 1

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._counters.faults += 1
            self._counters.faults_by_kind[kind] += 1

    def _add(
        self,
        *,
        bytes_received: int = 0,
        bytes_forwarded: int = 0,
        chunked_bodies: int = 0,
        tls_probes: int = 0,
    ) -> None:
        with self._lock:
            self._counters.chunked_bodies += chunked_bodies
            self._counters.bytes_received += bytes_received
            self._counters.bytes_forwarded += bytes_forwarded
            self._counters.tls_probes += tls_probes

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._counters.statuses[status] += 1
            self._log_entries.append(LogEntry(method, path, status))

    def _track(self, sock: socket.socket | None, *, add: bool) -> None:
        if sock is None:
            return
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)
