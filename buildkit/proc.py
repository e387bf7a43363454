"""The one place imgbuild starts processes.

Every command is logged (shlex-quoted, secrets redacted) before it runs; a missing program is a
one-line CommandNotFoundError; a failure carries the command, exit code and the tail of its output.
Secrets are never put in argv: callers pass them through files, stdin or a private DOCKER_CONFIG.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from buildkit import log
from buildkit.errors import CommandNotFoundError

# Anything that looks like a credential: key=value pairs with a secret-ish key, bearer/basic tokens,
# AWS access keys and long base64 blobs (ECR tokens are ~2 KB of base64).
_SECRET_PATTERNS = (
    re.compile(r"(?i)((?:bearer|basic)\s+)([A-Za-z0-9+/=._-]{8,})"),
    re.compile(
        r"(?i)((?:password|passwd|secret|token|auth|credential|api[_-]?key)[\w.-]*[=:]\s*)(\S+)"
    ),
    re.compile(r"()(AKIA[0-9A-Z]{16})"),
    re.compile(r"()([A-Za-z0-9+/]{200,}={0,2})"),
)
_registered_secrets: set[str] = set()
# The process groups of streamed children still running (any thread's): an interrupt in the main
# thread stops them all (stop_streams), as a build in a worker thread would not see it.
_streaming: set[int] = set()


def register_secret(value: str) -> None:
    """Redact this exact value from every command line and log line from now on."""
    if len(value) >= 4:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    """Return text with registered secrets and credential-looking values replaced by ***."""
    for secret in _registered_secrets:
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


@dataclass(frozen=True, kw_only=True)
class Completed:
    """A finished process: its exit code and what it printed (when captured)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandFailed(Exception):
    """A command exited non-zero; callers translate it into an ImgbuildError with context."""

    def __init__(self, result: Completed) -> None:
        self.result = result
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        super().__init__(f"{shlex.join(result.args)} exited {result.returncode}: {redact(tail)}")


def which(program: str) -> str:
    """Resolve a program on PATH or raise CommandNotFoundError naming it."""
    path = shutil.which(program)
    if path is None:
        raise CommandNotFoundError(f"'{program}' is not on PATH; install it (make services does)")
    return path


def _full_env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    if env:
        merged.update(env)
    return merged


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
    check: bool = True,
    quiet: bool = False,
) -> Completed:
    """Run a command to completion, capturing its output."""
    argv = (which(args[0]), *args[1:])
    if not quiet:
        log.command(redact(shlex.join(args)))
    try:
        proc = subprocess.run(
            argv,
            env=_full_env(env),
            cwd=cwd,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        result = Completed(args=tuple(args), returncode=-1, stdout="", stderr=f"timed out: {exc}")
        raise CommandFailed(result) from exc
    result = Completed(
        args=tuple(args), returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr
    )
    if check and proc.returncode != 0:
        raise CommandFailed(result)
    return result


@contextmanager
def _terminating(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Make sure a streamed child, and whatever it started, never outlives us (Ctrl-C,
    SIGTERM, exceptions). The child leads its own process group: `docker buildx` runs the buildx
    plugin as a process of its own, which a SIGTERM to `docker` alone leaves running."""
    _streaming.add(proc.pid)
    try:
        yield proc
    finally:
        _streaming.discard(proc.pid)
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _reap_group(proc.pid)


def stop_streams() -> None:
    """SIGTERM every streamed child still running (run.fleet, interrupted: its worker threads'
    builds then end, and the threads with them)."""
    for pgid in list(_streaming):
        _signal_group(pgid, signal.SIGTERM)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _reap_group(pgid: int, seconds: float = 5.0) -> None:
    """Wait for the rest of the group (a plugin finishing its cancel), then kill what is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)  # the group's other members are not our children: no wait() for them
    _signal_group(pgid, signal.SIGKILL)


def stream(
    args: Sequence[str],
    on_line: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Completed:
    """Run a command, handing each line of its merged stdout/stderr to on_line as it arrives."""
    argv = (which(args[0]), *args[1:])
    log.command(redact(shlex.join(args)))
    lines: list[str] = []
    proc = subprocess.Popen(
        argv,
        env=_full_env(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        process_group=0,  # see _terminating; the terminal's Ctrl-C reaches us, and we stop it
    )
    with _terminating(proc):
        assert proc.stdout is not None  # guaranteed by stdout=PIPE
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            on_line(line)
        returncode = proc.wait()
    return Completed(args=tuple(args), returncode=returncode, stdout="\n".join(lines), stderr="")


def spawn_detached(args: Sequence[str], *, log_path: str, pass_fds: Sequence[int] = ()) -> int:
    """Start a long-lived process in its own session (no terminal signals reach it), output
    appended to `log_path`; returns its pid without waiting."""
    argv = (which(args[0]), *args[1:])
    log.command(redact(shlex.join(args)))
    with open(log_path, "ab") as out:  # noqa: PTH123 - a plain fd for the child
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    return proc.pid
