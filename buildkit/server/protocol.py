"""The wire between the `imgbuild` launcher and a resident `imgbuild server`.

Standard library only, and only what a no-op needs: the launcher imports this before it knows
whether it will run the command itself, so every import here is paid by every invocation.

One request per connection. A message is a 4-byte big-endian length and a JSON object; the
`run` request also carries the client's stdin, stdout and stderr as SCM_RIGHTS file descriptors,
so the server's worker writes straight to the client's terminal or pipe.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import zlib

TYPE_CHECKING = False  # `typing` is ~4 ms of every invocation's start; annotations only
if TYPE_CHECKING:
    from typing import Any

DIR_ENV = "IMGBUILD_SERVER_DIR"
"""Where the sockets live (default: $XDG_RUNTIME_DIR/imgbuild, else ~/.cache/imgbuild/server)."""
MODE_ENV = "IMGBUILD_SERVER"
"""`off`: never hand commands to a running server."""
IDLE_ENV = "IMGBUILD_SERVER_IDLE"
"""Seconds without a request after which a server exits (default: 3 hours)."""

DEFAULT_IDLE_SECONDS = 3 * 3600
_HEADER = struct.Struct(">I")
_MAX_MESSAGE = 16 << 20  # an environment plus argv; anything bigger is not ours


class ProtocolError(Exception):
    """The other end sent something that is not a message of this protocol."""


def runtime_dir() -> str:
    """The per-user directory holding the server sockets (created 0700 by the server)."""
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "imgbuild")
    return os.path.join(os.path.expanduser("~"), ".cache", "imgbuild", "server")


def fingerprint() -> str:
    """Which code a server runs: the interpreter and every module's size and mtime.

    A server forks workers from modules it imported when it started, so after an upgrade or
    an edit of the checkout the launcher must not reach it: a new fingerprint is a new socket.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # buildkit/, not server/
    parts = [sys.executable, package]
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                st = os.stat(os.path.join(dirpath, name))
                parts.append(f"{dirpath}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return f"{zlib.crc32(chr(0).join(parts).encode('utf-8', 'surrogateescape')):08x}"


def socket_path(directory: str | None = None, fp: str | None = None) -> str:
    """The socket of the server running this code (short: AF_UNIX paths stop at 107 bytes)."""
    return os.path.join(directory or runtime_dir(), f"s-{fp or fingerprint()}.sock")


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one message, with file descriptors attached when given."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogateescape")
    data = _HEADER.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(sock, [data], fds)
        data = data[sent:]
    sock.sendall(data)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors that came with it; (None, []) when the peer hung up."""
    fds: list[int] = []
    if max_fds:
        first, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, max_fds)
    else:
        first = sock.recv(_HEADER.size)
    if not first:
        _close_all(fds)
        return None, []
    try:
        header = first + _read_exactly(sock, _HEADER.size - len(first))
        (length,) = _HEADER.unpack(header)
        if length > _MAX_MESSAGE:
            raise ProtocolError(f"message of {length} bytes")
        message = json.loads(_read_exactly(sock, length).decode("utf-8", "surrogateescape"))
        if not isinstance(message, dict):
            raise ProtocolError("message is not an object")
    except BaseException:
        _close_all(fds)
        raise
    return message, fds


def connect(path: str, timeout: float | None = None) -> socket.socket | None:
    """A connection to the server at `path`, or None when none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def request(path: str, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any] | None:
    """A one-shot control request (`status`, `stop`); None when no server answers."""
    sock = connect(path, timeout)
    if sock is None:
        return None
    with sock:
        try:
            send(sock, message)
            reply, _ = receive(sock)
        except (OSError, ProtocolError, ValueError):
            return None
    return reply


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = sock.recv(n)
        if not chunk:
            raise ProtocolError("connection closed mid-message")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
