"""A tiny TCP <-> unix-socket forwarder, so a dockerd in its own network namespace reaches the
registry on the host's 127.0.0.1 (see freshd.py for why the namespace is needed).

    python forward.py unix-to-tcp SOCKET HOST:PORT   # host side: listen on SOCKET
    python forward.py tcp-to-unix HOST:PORT SOCKET   # namespace side: listen on HOST:PORT
    python forward.py http-proxy SOCKET              # host side: an HTTP proxy on SOCKET

The HTTP proxy lets a fresh dockerd's RUN steps reach Debian's archive (fresh_cases.py P4-FRESH:
apt-get in the base's gem stage): plain http:// GETs, one request per connection.
"""

from __future__ import annotations

import socket
import sys
import threading
import urllib.parse
from contextlib import suppress
from pathlib import Path


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with suppress(OSError):
        while data := src.recv(1 << 16):
            dst.sendall(data)
    for s in (src, dst):
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def _connect(target: str) -> socket.socket:
    if target.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target)
        return s
    host, _, port = target.rpartition(":")
    return socket.create_connection((host, int(port)))


def _listen(address: str) -> socket.socket:
    if address.startswith("/"):
        Path(address).unlink(missing_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
    else:
        host, _, port = address.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    s.listen(64)
    return s


def serve(listen: str, target: str) -> None:
    server = _listen(listen)
    while True:
        client, _ = server.accept()
        try:
            upstream = _connect(target)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


_HOP_BY_HOP = (b"connection", b"proxy-connection", b"keep-alive")


def _proxy_one(client: socket.socket) -> None:
    """Answer one proxied request (`GET http://host/path`): sent on in origin form with
    `Connection: close`, the reply relayed until the origin closes. Pipelined requests after
    the first are dropped; the client asks again on a new connection (apt does)."""
    with suppress(OSError, ValueError), client:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(1 << 16)
            if not data:
                return
            head += data
        line, *fields = head.partition(b"\r\n\r\n")[0].split(b"\r\n")
        method, url, version = line.split(b" ", 2)
        parts = urllib.parse.urlsplit(url.decode("ascii"))
        if parts.scheme != "http" or not parts.hostname:
            client.sendall(b"HTTP/1.1 501 Not Implemented\r\nConnection: close\r\n\r\n")
            return
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [f for f in fields if f.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
        request = b"\r\n".join(
            [b" ".join((method, path.encode("ascii"), version)), *kept, b"Connection: close"]
        )
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=120) as up:
            up.sendall(request + b"\r\n\r\n")
            while data := up.recv(1 << 16):
                client.sendall(data)


def serve_proxy(listen: str) -> None:
    server = _listen(listen)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_proxy_one, args=(client,), daemon=True).start()


def main() -> int:
    mode, *args = sys.argv[1:]
    if mode == "http-proxy" and len(args) == 1:
        serve_proxy(args[0])
        return 0
    if mode not in ("unix-to-tcp", "tcp-to-unix") or len(args) != 2:
        print(__doc__)
        return 2
    serve(*args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
