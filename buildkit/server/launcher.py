"""The `imgbuild` console entry: hand the command to a running `imgbuild server`, or run it here.

A one-shot process spends most of a no-op importing (typer, click, rich, yaml, http.client: about
0.25 s with bytecode, more than the work). A resident server has them imported already and forks
a worker per command that runs with this process's argv, environment, working directory, umask
and stdin/stdout/stderr, so output, exit codes and --json behave exactly as in-process. Without a
server, or with IMGBUILD_SERVER=off, the command runs in this process as before.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
from types import FrameType

from buildkit.server import protocol as serverproto

# A worker that dies without reporting its exit status (killed, or a crash in the interpreter).
WORKER_LOST_EXIT = 70
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def main() -> None:
    """Console entry point."""
    directory = serverproto.runtime_dir()
    # No socket directory, no server: CI never pays for the fingerprint walk.
    if os.environ.get(serverproto.MODE_ENV, "") != "off" and os.path.isdir(directory):
        code = run_on_server(serverproto.socket_path(directory), sys.argv[1:])
        if code is not None:
            sys.exit(code)
    # Importing the CLI allocates ~100k objects that live as long as the process: the collector
    # would walk them ~60 times and free next to nothing (~10 ms of a one-shot run, issue 17
    # P2-ONESHOT). It is off while they load, and they are then frozen out of later walks.
    gc.disable()
    try:
        from buildkit.cli.app import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    cli_main()


def run_on_server(path: str, argv: list[str]) -> int | None:
    """The exit code of `argv` run by the server at `path`; None if no server took it (then
    nothing ran, and the caller runs the command itself)."""
    if not os.path.exists(path):  # the common case without a server: one stat, no socket
        return None
    sock = serverproto.connect(path)
    if sock is None:
        return None
    # Relay signals from before the request: a worker starts (and holds our stdout/stderr)
    # before we learn its pid, and a Ctrl-C in that window must reach it, not kill only us.
    relay = _SignalRelay()
    with sock:
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            request = {"op": "run", "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                       "umask": umask}  # fmt: skip
            serverproto.send(sock, request, fds=[0, 1, 2])
            started, _ = serverproto.receive(sock)
        except (OSError, serverproto.ProtocolError, ValueError):
            started = None
        if not started or not isinstance(started.get("pid"), int):
            relay.give_back()
            return None  # refused before a worker started: nothing ran
        relay.forward_to(started["pid"])
        return _wait_for_worker(sock, started["pid"])


class _SignalRelay:
    """Our signals go to the worker once its pid is known; until then they wait here."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self.saved = {s: signal.getsignal(s) for s in _FORWARDED}
        for signum, handler in self.saved.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def forward_to(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def give_back(self) -> None:
        """No worker: our own handlers again, and what arrived meanwhile is delivered to us."""
        for signum, handler in self.saved.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, handler)
        for waiting in self.pending:
            os.kill(os.getpid(), waiting)


def _wait_for_worker(sock: socket.socket, pid: int) -> int:
    """Wait until the worker reports its exit code; our signals are relayed to it meanwhile
    (Ctrl-C reaches only this process: the worker is not in the terminal's process group)."""
    try:
        done, _ = serverproto.receive(sock)
    except (OSError, serverproto.ProtocolError, ValueError):
        done = None
    if not done or not isinstance(done.get("exit"), int):
        print(
            f"imgbuild: error: the server's worker (pid {pid}) ended without an exit status; "
            f"run again with {serverproto.MODE_ENV}=off to bypass the server",
            file=sys.stderr,
        )
        return WORKER_LOST_EXIT
    code: int = done["exit"]
    return code
