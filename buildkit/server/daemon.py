"""`imgbuild server`: a resident process that runs imgbuild commands without starting Python.

    python -m buildkit.server --socket PATH [--idle SECONDS] [--ready-fd FD]

It imports the CLI, pipeline, engines and reports once, then serves one request per connection
on a user-only unix socket: `run` forks a worker that takes the client's stdin/stdout/stderr,
argv, environment, working directory and umask, runs the CLI's `main` (handed in by
`server/__main__.py`) and reports the exit code; `status` and `stop` are control requests. The
server itself stays single-threaded (a fork from a threaded process can inherit a held lock) and
runs no command code, so every worker starts from the same freshly imported state a one-shot
process has.

It exits after `--idle` seconds without a request, on `stop`, SIGTERM or SIGINT, and when its
socket is removed or replaced; a new socket name per code fingerprint means an upgraded or
edited checkout never reaches an old server.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from buildkit.server import protocol as serverproto
from buildkit.server import watcher as watch
from buildkit.source import treewatch

# Imported before serving so that workers start with them loaded: this is the whole gain.
_WARM = (
    "buildkit.cli.app",
    "buildkit.run.pipeline",
    "buildkit.run.pushing",
    "buildkit.run.access",
    "buildkit.reports.collect",
    "buildkit.reports.table",
    "buildkit.engine.docker_api",
    "buildkit.engine.builder",
    "buildkit.run.staging",
    "buildkit.codebuild.runtime",
    "typer._click.decorators",
    "tenacity",
    "docker",
)
_INTERNAL_EXIT = 70
Command = Callable[[], object]  # runs one command line from sys.argv; may raise SystemExit


class Server:
    """The accept loop, its workers and its bookkeeping."""

    def __init__(self, path: str, idle_seconds: float, command: Command) -> None:
        self.path = path
        self.command = command  # what a worker runs: the CLI's main (server/__main__.py)
        self.idle_seconds = idle_seconds
        self.started = time.time()
        self.last_request = time.monotonic()
        self.served = 0
        self.workers: set[int] = set()
        self.stopping = False
        self.fingerprint = serverproto.fingerprint()  # of the code imported, not of later edits
        self.listener = _listen(path)
        self.inode = os.stat(path).st_ino
        self.watcher = _watcher()

    def serve_forever(self) -> None:
        """Accept requests until idle, stopped, or the socket is no longer ours."""
        try:
            while not self.stopping:
                self._reap()
                timeout = self.idle_seconds - (time.monotonic() - self.last_request)
                if timeout <= 0 and not self.workers:
                    break
                readable: list[socket.socket | int] = [self.listener]
                if self.watcher is not None:  # read events as they come: the kernel's queue
                    readable.append(self.watcher.inotify.fd)  # is bounded (then: overflow)
                ready, _, _ = select.select(readable, [], [], max(min(timeout, 1.0), 0.05))
                if not self._still_ours():
                    break
                if self.watcher is not None:
                    self.watcher.drain()
                if self.listener in ready:
                    self._accept()
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening and remove the socket if it is still this server's."""
        self.listener.close()
        if self.watcher is not None:
            self.watcher.close()
        if self._still_ours():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def status(self) -> dict[str, Any]:
        """What `imgbuild server status` prints."""
        return {
            "pid": os.getpid(),
            "socket": self.path,
            "fingerprint": self.fingerprint,
            "started": self.started,
            "served": self.served,
            "running": len(self.workers),
            "idle_seconds": self.idle_seconds,
            "python": sys.executable,
            "watched": self.watcher.counts() if self.watcher is not None else {},
        }

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            if _peer_uid(conn) != os.getuid():  # the directory is 0700; this is belt and braces
                return
            conn.settimeout(10.0)
            try:
                message, fds = serverproto.receive(conn, max_fds=3)
            except (OSError, serverproto.ProtocolError, ValueError):
                return
            if message is None:
                return
            self.last_request = time.monotonic()
            self._dispatch(conn, message, fds)

    def _dispatch(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        try:
            if op == "run" and len(fds) == 3:
                self.served += 1
                self._hand_over_feeds()
                self.workers.add(_fork_worker(conn, message, fds, self.listener, self.command))
            elif op == "watch":
                self._watch(message)
            elif op == "status":
                serverproto.send(conn, self.status())
            elif op == "stop":
                self.stopping = True
                serverproto.send(conn, {"stopped": os.getpid()})
        except OSError:
            pass  # the client went away; nothing to clean up beyond its descriptors
        finally:
            for fd in fds:
                os.close(fd)

    def _hand_over_feeds(self) -> None:
        """Read every pending event, then leave the watcher's word where the worker about to be
        forked finds it (source.treewatch; the server itself never walks a tree). Workers ask
        to watch what they walked only when there is a watcher to ask."""
        if self.watcher is not None:
            self.watcher.drain()
            ask = functools.partial(watch.ask_server, self.path)
            treewatch.install(treewatch.TreeWatch(self.watcher.feeds(), ask))

    def _watch(self, message: dict[str, Any]) -> None:
        root, dirs = message.get("root"), message.get("dirs")
        if self.watcher is None or not isinstance(root, str) or not isinstance(dirs, list):
            return
        if os.path.isabs(root) and all(isinstance(d, str) for d in dirs):
            self.watcher.watch(root, dirs)

    def _reap(self) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
            self.workers.discard(pid)

    def _still_ours(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False


def _watcher() -> watch.Watcher | None:
    """inotify where the platform has it; without it workers simply stat every file."""
    try:
        return watch.Watcher()
    except (OSError, AttributeError):
        return None


def _listen(path: str) -> socket.socket:
    """Bind `path` in a user-only directory, replacing a dead server's socket."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.stat(directory)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise SystemExit(f"imgbuild server: {directory} must be owned by you and mode 0700")
    running = serverproto.connect(path, timeout=2.0)
    if running is not None:
        running.close()
        raise SystemExit(f"imgbuild server: a server already listens on {path}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a dead server's leftover
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    listener.setblocking(False)
    return listener


def _peer_uid(conn: socket.socket) -> int:
    if not hasattr(socket, "SO_PEERCRED"):  # not Linux: the 0700 directory is the guard
        return os.getuid()
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _fork_worker(
    conn: socket.socket,
    message: dict[str, Any],
    fds: list[int],
    listener: socket.socket,
    command: Command,
) -> int:
    """Fork a worker for one `run` request; returns its pid (in the server)."""
    pid = os.fork()
    if pid:
        return pid
    code = _INTERNAL_EXIT
    try:
        listener.close()
        _become_client(message, fds)
        serverproto.send(conn, {"pid": os.getpid()})
        code = _run_command(command)
        _flush_stdio()
        serverproto.send(conn, {"exit": code})
    except BaseException:  # a worker must always end with os._exit
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        os._exit(code)


def _become_client(message: dict[str, Any], fds: list[int]) -> None:
    """Take over the client's descriptors, environment, directory, umask and signals."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(message.get("env") or {}).items()})
    os.chdir(str(message.get("cwd") or "/"))
    os.umask(int(message.get("umask", 0o022)))
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it: EPIPE, not death
    sys.stdin = _stream(0, "r")
    sys.stdout = _stream(1, "w", line_buffering=os.isatty(1))
    sys.stderr = _stream(2, "w", errors="backslashreplace", line_buffering=True)
    sys.argv = ["imgbuild", *[str(a) for a in message.get("argv") or []]]


def _stream(
    fd: int, mode: str, *, errors: str = "strict", line_buffering: bool = False
) -> io.TextIOWrapper:
    """A text stream over `fd` as a fresh interpreter makes it (stdout line-buffered on a tty,
    stderr always)."""
    encoding = os.environ.get("PYTHONIOENCODING", "utf-8").split(":")[0] or "utf-8"
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered, encoding=encoding, errors=errors, line_buffering=line_buffering
    )


def _run_command(command: Command) -> int:
    try:
        command()
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _warm_up() -> None:
    import importlib

    for name in _WARM:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def main(command: Command, argv: list[str] | None = None) -> int:
    """Serve `command` (the CLI's main, handed in by server/__main__.py: the server package sits
    below the CLI in docs/architecture.md, so it never imports it)."""
    parser = argparse.ArgumentParser(prog="python -m buildkit.server")
    parser.add_argument("--socket", default=None, help="default: this code's socket")
    parser.add_argument("--idle", type=float, default=None, help="seconds; default 3 hours")
    parser.add_argument("--ready-fd", type=int, default=None, help="write 'ready' here")
    args = parser.parse_args(argv)
    idle = args.idle
    if idle is None:
        idle = float(os.environ.get(serverproto.IDLE_ENV) or serverproto.DEFAULT_IDLE_SECONDS)
    _warm_up()
    server = Server(args.socket or serverproto.socket_path(), idle, command)

    def stop(_signum: int, _frame: object) -> None:
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready_fd is not None:
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)
    server.serve_forever()
    return 0
