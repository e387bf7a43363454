"""Human-facing output. Everything goes to stderr so stdout stays clean for --json.

On a terminal, BuildKit progress collapses into one live status line per build; anywhere else
(CI, CodeBuild, pipes) every line is printed plainly so logs read top to bottom.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

_debug = False
_live_width = 0
# Several apps' layers building at once (run.fleet): each thread's lines carry its [app/layer]
# scope, and one line is written whole before another starts.
_scope = threading.local()
_write = threading.Lock()


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def debug_enabled() -> bool:
    return _debug


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Prefix this thread's lines with `[name] ` (and print them plainly: one live status line
    cannot show several builds)."""
    previous = getattr(_scope, "name", None)
    _scope.name = name
    try:
        yield
    finally:
        _scope.name = previous


def is_interactive() -> bool:
    """True on a real terminal outside CI: live progress instead of plain lines."""
    if os.environ.get("CI") or os.environ.get("CODEBUILD_BUILD_ID"):
        return False
    if getattr(_scope, "name", None):
        return False
    return sys.stderr.isatty()


def _emit(text: str) -> None:
    name = getattr(_scope, "name", None)
    with _write:
        _clear_live()
        print(f"[{name}] {text}" if name else text, file=sys.stderr, flush=True)


def info(message: str) -> None:
    _emit(f"imgbuild: {message}")


def warn(message: str) -> None:
    _emit(f"imgbuild: warning: {message}")


def error(message: str) -> None:
    _emit(f"imgbuild: error: {message}")


def debug(message: str) -> None:
    if _debug:
        _emit(f"imgbuild: debug: {message}")


def command(cmdline: str) -> None:
    """Echo a command about to run (already redacted by proc)."""
    if _debug or not is_interactive():
        _emit(f"+ {cmdline}")


def plain(line: str) -> None:
    """A line of a child's output, passed through as-is (CI mode)."""
    _emit(line)


def live(status: str) -> None:
    """Overwrite the current status line (terminal only)."""
    global _live_width
    columns = 100
    text = status[: columns - 1]
    sys.stderr.write("\r" + text.ljust(_live_width))
    sys.stderr.flush()
    _live_width = len(text)


def _clear_live() -> None:
    global _live_width
    if _live_width:
        sys.stderr.write("\r" + " " * _live_width + "\r")
        _live_width = 0


class Timer:
    """Wall-clock seconds since creation, for the summaries."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start
