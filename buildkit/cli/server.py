"""`imgbuild server start|stop|status`: the resident process that makes a no-op take no time.

Commands reach a server only through the launcher (`buildkit.server.launcher`); these commands only
start, stop and describe one. A server runs the code it started with: after an upgrade or an edit
the launcher stops using it (new fingerprint, new socket) and `start` starts a new one.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from buildkit import log, proc
from buildkit.cli.options import json_option
from buildkit.errors import ServerError
from buildkit.server import protocol as serverproto

_START_TIMEOUT = 60.0  # importing everything on a cold page cache of a slow CI disk


server_app = typer.Typer(
    help="A resident process that runs imgbuild commands without starting Python each time.",
    no_args_is_help=True,
)


@server_app.command("start")
def start(
    idle: Annotated[
        float, typer.Option("--idle", help="Exit after this many minutes without a command.")
    ] = serverproto.DEFAULT_IDLE_SECONDS / 60,
) -> None:
    """Start a server for this version of imgbuild (does nothing if one is running)."""
    path = serverproto.socket_path()
    running = serverproto.request(path, {"op": "status"})
    if running is not None:
        log.info(f"server already running (pid {running['pid']}, socket {path})")
        return
    if idle <= 0:
        raise ServerError(f"--idle {idle}: give a positive number of minutes")
    pid = _spawn(path, idle * 60)
    log.info(f"server started (pid {pid}, socket {path}); IMGBUILD_SERVER=off bypasses it")


@server_app.command("stop")
def stop() -> None:
    """Stop every imgbuild server of this user (all versions)."""
    stopped = 0
    for sock in sorted(Path(serverproto.runtime_dir()).glob("s-*.sock")):
        path = str(sock)
        reply = serverproto.request(path, {"op": "stop"})
        if reply is not None:
            stopped += 1
            log.info(f"stopped the server on {path} (pid {reply.get('stopped')})")
    if not stopped:
        log.info("no server running")


@server_app.command("status")
def status(as_json: Annotated[bool, json_option("Machine-readable.")] = False) -> None:
    """Whether a server for this version runs, and what it has done."""
    path = serverproto.socket_path()
    reply = serverproto.request(path, {"op": "status"})
    if as_json:
        print(json.dumps(reply or {"running": False, "socket": path}, indent=2))
    elif reply is None:
        print(f"no server for this version of imgbuild (socket {path})")
    else:
        print(_describe(reply))
    if reply is None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `imgbuild server ...` to the main CLI."""
    app.add_typer(server_app, name="server")


def _spawn(path: str, idle_seconds: float) -> int:
    """Start `python -m buildkit.server` detached; return once it listens (it writes `ready`
    on a pipe after binding the socket: no polling)."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    try:
        args = [sys.executable, "-m", "buildkit.server", "--socket", path,
                "--idle", str(idle_seconds), "--ready-fd", str(write_fd)]  # fmt: skip
        pid = proc.spawn_detached(args, log_path=path + ".log", pass_fds=[write_fd])
        os.close(write_fd)
        write_fd = -1
        ready, _, _ = select.select([read_fd], [], [], _START_TIMEOUT)
        said = os.read(read_fd, 64) if ready else b""
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if said != b"ready\n":
        why = _last_line(path + ".log") or f"no answer within {_START_TIMEOUT:.0f} s"
        raise ServerError(f"the server did not start: {why} (log: {path}.log)")
    return pid


def _last_line(log_path: str) -> str:
    try:
        lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _describe(reply: dict[str, Any]) -> str:
    up = time.time() - float(reply.get("started", time.time()))
    return (
        f"server pid {reply.get('pid')} on {reply.get('socket')}: up {up / 60:.0f} min, "
        f"{reply.get('served')} command(s) served, {reply.get('running')} running, exits after "
        f"{float(reply.get('idle_seconds', 0)) / 60:.0f} idle min"
    )
