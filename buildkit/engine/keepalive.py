"""One kept-alive HTTP(S) connection to a registry, per client, thread and process.

A run asks its registry 10 to 20 small questions (HEADs of content and moving tags, manifests,
configs). urllib opens a new connection for each: on loopback ~3 ms of the ~4.5 ms a HEAD takes,
and against ECR a TCP and TLS handshake per question, more than the answer. This keeps one
connection open and reconnects once, transparently, when the server closed an idle one.

Not used where urllib does something this does not: through an HTTP(S) proxy from the
environment, and for redirects (ECR sends blob GETs to S3), which the caller re-sends through
urllib.
"""

from __future__ import annotations

import http.client
import os
import threading
import urllib.request
from collections.abc import Mapping
from typing import IO

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# What a server that closed an idle kept-alive connection looks like on the next request.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

Response = tuple[int, dict[str, str], bytes]


class KeepAlive:
    def __init__(self, scheme: str, host: str, timeout: float) -> None:
        self.scheme = scheme
        self.host = host
        self.timeout = timeout
        self._local = threading.local()

    @staticmethod
    def usable(scheme: str, host: str) -> bool:
        """False when the environment routes this host through a proxy (urllib honours it)."""
        proxies = urllib.request.getproxies()
        if scheme not in proxies:
            return True
        return bool(urllib.request.proxy_bypass(host.rsplit(":", 1)[0]))

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | IO[bytes] | None = None,
    ) -> Response:
        """(status, headers, body); raises OSError or http.client.HTTPException on failure."""
        conn, reused = self._connection()
        try:
            return self._exchange(conn, method, path, headers, body)
        except _STALE:
            if not reused:
                raise
        # The server dropped the idle connection before reading this request: send it again.
        if body is not None and not isinstance(body, bytes):
            body.seek(0)
        return self._exchange(self._connection()[0], method, path, headers, body)

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | IO[bytes] | None,
    ) -> Response:
        """One request and its answer; a connection that failed or will close is dropped."""
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, dict(response.headers), data

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """(connection, whether it served a request before)."""
        kept = getattr(self._local, "conn", None)
        if kept is not None and self._local.pid == os.getpid():
            return kept, True
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, timeout=self.timeout
            )
        else:
            conn = http.client.HTTPConnection(self.host, timeout=self.timeout)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn, False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            if self._local.pid == os.getpid():
                conn.close()
            self._local.conn = None
