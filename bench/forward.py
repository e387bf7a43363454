"""A tiny TCP <-> unix-socket forwarder, so a dockerd in its own network namespace reaches the
registry on the host's 127.0.0.1 (see freshd.py for why the namespace is needed).

    python forward.py unix-to-tcp SOCKET HOST:PORT   # host side: listen on SOCKET
    python forward.py tcp-to-unix HOST:PORT SOCKET   # namespace side: listen on HOST:PORT
"""

from __future__ import annotations

import socket
import sys
import threading
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


def main() -> int:
    mode, listen, target = sys.argv[1:4]
    if mode not in ("unix-to-tcp", "tcp-to-unix"):
        print(__doc__)
        return 2
    serve(listen, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
