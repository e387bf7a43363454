"""BuildKit progress output -> per-step timings, cache hits and the failing step's output.

The input is `--progress=plain` output on the docker CLI's stderr (buildx, or the BuildKit built
into the 20.10 CLI), parsed line by line with `PlainProgressParser` while the build runs. A vertex
is a block of lines that all start with `#N`: a header (`#7 [build 3/4] RUN …`), log lines
(`#7 0.329 text`, the number being seconds since the vertex started), status lines (`#11
exporting layers 0.1s done`) and one result (`#7 DONE 1.4s`, `#7 CACHED`, `#7 ERROR: …`, `#7
CANCELED`). Quirks seen in real output (samples in tests/data/progress/):
  - the printer re-prints a vertex's header whenever it switches back to it, after writing
    `#N ...` for the vertex it leaves; a finished vertex can even be printed, and finish, twice;
  - 20.10 writes `#N sha256:<digest>` after every header (including re-printed ones);
  - buildx writes a `#0 building with "default" instance …` banner that is not a vertex;
  - vertex numbers are assigned when a vertex is first *known*, not run, so they come out of
    order, and vertices are printed sorted by completion time, so a cached `FROM` (whose
    timestamps come from the build that first pulled it) can be printed before `load build
    definition`;
  - log timestamps are `%#.4g` cut to five characters: `0.301`, `10.04`, `100.0`;
  - an `ERROR` vertex does not mean the build failed: importing a cache manifest that does not
    exist yet is an error vertex of a build that succeeds;
  - after the vertices, each failed vertex gets a block between `------` lines (buildx repeats
    the vertex's logs there, 20.10 does not), then the solve error: `ERROR: failed to solve: …`
    from buildx, the bare message from 20.10; a Dockerfile syntax error has no vertex at all.

Nothing here prints; callers decide what to show. `Step.seconds` is the vertex's own duration, so
the `total_seconds` of `summarize` exceeds the wall time when stages run in parallel.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

__all__ = [
    "CANCELED",
    "PlainProgressParser",
    "RunningStep",
    "Step",
    "Summary",
    "is_internal_step",
    "solve_error",
    "summarize",
]

CANCELED = "context canceled"
"""BuildKit's error suffix for a vertex stopped because another one failed; `Step.error` of a
`#N CANCELED` plain line."""

_CACHE_IMPORT = "importing cache manifest"


@dataclass(frozen=True)
class Step:
    """One finished BuildKit vertex.

    `seconds` is 0.0 for cached vertices. For an errored or canceled vertex in plain output (which
    prints no duration for those) it is a lower bound: the later of its last log line and the time
    the parser has seen it running. `internal` marks vertices that are not Dockerfile instructions
    (`[internal] …`, `importing cache manifest …`, `exporting …`, and `FROM`, see
    `is_internal_step`): they count towards the time but not towards the cache ratio.
    """

    name: str
    seconds: float
    cached: bool
    error: str | None = None
    internal: bool = False

    @property
    def canceled(self) -> bool:
        """Stopped because another vertex failed (BuildKit's own test: the error's suffix)."""
        return self.error is not None and self.error.endswith(CANCELED)


class RunningStep(NamedTuple):
    """The vertex a live status line should show; `started` is the parser clock's reading when
    its header was first seen (`time.monotonic()` unless the parser was given another clock)."""

    name: str
    started: float


class Summary(TypedDict):
    total_seconds: float  # sum of all step durations, internal ones included (not wall time)
    cached: int  # non-internal steps served from the cache
    executed: int  # non-internal steps that ran (failed ones included, canceled ones not)
    cache_ratio: float | None  # cached / (cached + executed); None without such steps


# A Dockerfile instruction: `[2/4] RUN`, `[build 3/5] COPY`, `[linux/amd64 build 1/5] FROM`.
_INSTRUCTION = re.compile(r"\[(?:[^\]]* )?\d+/\d+\] (?P<instruction>\S+)")


def is_internal_step(name: str) -> bool:
    """Whether a vertex is BuildKit machinery rather than a Dockerfile instruction.

    Everything that is not `[stage n/m] INSTRUCTION` is internal (`[internal] load …`,
    `importing cache manifest from …`, `exporting to image`, `exporting cache`, `resolve image
    config for …`, `[auth] …`, frontend images), and so is `FROM`: resolving the base image is not
    a cacheable step, and the two CLIs disagree on it (buildx prints an unchanged base `CACHED`,
    the 20.10 CLI `DONE 0.0s`), which would make the cache ratio depend on the CLI.
    """
    match = _INSTRUCTION.match(name)
    return match is None or match["instruction"].upper() == "FROM"


def summarize(steps: Iterable[Step]) -> Summary:
    """Totals over finished steps; `total_seconds` is rounded to milliseconds."""
    total = 0.0
    cached = executed = 0
    for step in steps:
        total += step.seconds
        if step.internal or step.canceled:
            continue
        if step.cached:
            cached += 1
        else:
            executed += 1
    counted = cached + executed
    return Summary(
        total_seconds=round(total, 3),
        cached=cached,
        executed=executed,
        cache_ratio=cached / counted if counted else None,
    )


_GRPC_PREFIX = re.compile(r"rpc error: code = \w+ desc = ")


def solve_error(trailer: Sequence[str]) -> str | None:
    """The build's final error from the text after the progress, normalised across CLIs.

    buildx writes `ERROR: failed to solve: <message>` (with the gRPC wrapper for frontend errors),
    the 20.10 CLI the bare `<message>`; both become `<message>`. Only meaningful when the build
    exited non-zero: the trailer of a successful build may hold warnings.
    """
    for line in reversed(trailer):
        if line.startswith("ERROR:"):
            message = line.removeprefix("ERROR:").strip()
            message = message.removeprefix("failed to solve:").strip()
            return _GRPC_PREFIX.sub("", message, count=1)
    bare = [line for line in trailer if line and not line[0].isspace()]
    return _GRPC_PREFIX.sub("", bare[-1], count=1) if bare else None


def _failed_index(steps: Sequence[Step], message: str | None) -> int | None:
    """Index of the step that failed the build: the errored (not canceled) step whose error the
    final message repeats; failing that, the last errored step that is not a cache import (a
    missing cache manifest is an error vertex even in builds that succeed)."""
    errored = [i for i, step in enumerate(steps) if step.error is not None and not step.canceled]
    if message:
        for i in reversed(errored):
            error = steps[i].error
            if error and error in message:
                return i
    for i in reversed(errored):
        if not steps[i].name.startswith(_CACHE_IMPORT):
            return i
    return None


# --------------------------------------------------------------------------------------- plain

_VERTEX_LINE = re.compile(r"#(\d+)(?: (.*))?")
_DIGEST_LINE = re.compile(r"sha256:[0-9a-f]{64}")
_DONE = re.compile(r"DONE(?: (\d+(?:\.\d*)?)s)?")
_LOG_LINE = re.compile(r"(-?\d+\.\d*)(?: (.*))?")


def _is_result_or_body(rest: str) -> bool:
    return (
        rest in ("CACHED", "CANCELED", "...")
        or rest.startswith("ERROR:")
        or _DONE.fullmatch(rest) is not None
        or _DIGEST_LINE.fullmatch(rest) is not None
        or _LOG_LINE.fullmatch(rest) is not None
    )


@dataclass
class _Vertex:
    name: str
    started: float
    lines: deque[str]
    last_log: float = 0.0


class PlainProgressParser:
    """Streaming parser for `--progress=plain` output (buildx, or the 20.10 CLI's BuildKit).

    Feed it stderr one line at a time (with or without the newline). It keeps the finished steps,
    the running vertices and the output of vertices that errored; at most `max_log_lines` lines
    per vertex are kept. `clock` only times the running vertex (for `current` and the duration of
    vertices that end in ERROR/CANCELED); tests pass a fake one.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_log_lines: int = 200
    ) -> None:
        self._clock = clock
        self._max_log_lines = max_log_lines
        self._steps: list[Step] = []
        self._position: dict[int, int] = {}  # vertex number -> index in _steps
        self._open: dict[int, _Vertex] = {}  # running vertices, least recently active first
        self._errored_lines: dict[int, list[str]] = {}  # index in _steps -> that vertex's output
        self._trailer: list[str] = []
        self._in_error_block = False
        self._previous: int | None = None  # vertex number of the previous line, if it had one

    # -- input

    def feed(self, line: str) -> Step | None:
        """Consume one line; return the Step when it finishes a vertex for the first time.

        A vertex that finishes again (the printer repeats some) updates its entry in `steps` in
        place and returns None, so summing the returned steps never counts one twice.
        """
        line = line.rstrip("\r\n")
        match = _VERTEX_LINE.fullmatch(line)
        if match is None:
            self._previous = None
            self._feed_trailer(line)
            return None
        number, rest = int(match[1]), match[2] or ""
        previous, self._previous = self._previous, number
        if number == 0:  # buildx's `#0 building with "default" instance …` banner
            return None
        vertex = self._open.get(number)
        if vertex is None:  # a header, unless we joined mid-stream and missed it
            if not _is_result_or_body(rest):
                lines: deque[str] = deque(maxlen=self._max_log_lines)
                self._open[number] = _Vertex(name=rest, started=self._clock(), lines=lines)
            return None
        if previous != number:  # the printer switched back to this vertex: its header again
            self._open[number] = self._open.pop(number)  # now the most recently active
            return None
        return self._feed_body(number, vertex, rest)

    def feed_lines(self, lines: Iterable[str]) -> list[Step]:
        """Feed every line (a file, `text.splitlines()`); return the steps finished by them."""
        return [step for line in lines if (step := self.feed(line)) is not None]

    def _feed_body(self, number: int, vertex: _Vertex, rest: str) -> Step | None:
        if rest == "..." or _DIGEST_LINE.fullmatch(rest):
            return None
        if rest == "CACHED":
            return self._finish(number, vertex, 0.0, cached=True)
        if done := _DONE.fullmatch(rest):
            return self._finish(number, vertex, float(done[1] or 0.0))
        if rest == "CANCELED":
            return self._finish(number, vertex, self._elapsed(vertex), error=CANCELED)
        if rest.startswith("ERROR:"):
            error = rest.removeprefix("ERROR:").strip()
            return self._finish(number, vertex, self._elapsed(vertex), error=error)
        if log := _LOG_LINE.fullmatch(rest):
            vertex.last_log = max(vertex.last_log, float(log[1]))
            vertex.lines.append(log[2] or "")
        else:  # a status line (`transferring context: 55B done`), kept as context for errors
            vertex.lines.append(rest)
        return None

    def _feed_trailer(self, line: str) -> None:
        if not line.strip():
            return
        if line == "------":  # brackets the per-failed-vertex summary; the logs there are repeats
            self._in_error_block = not self._in_error_block
            return
        if not self._in_error_block:
            self._trailer.append(line)

    def _elapsed(self, vertex: _Vertex) -> float:
        return max(vertex.last_log, self._clock() - vertex.started)

    def _finish(
        self,
        number: int,
        vertex: _Vertex,
        seconds: float,
        *,
        cached: bool = False,
        error: str | None = None,
    ) -> Step | None:
        del self._open[number]
        step = Step(
            name=vertex.name,
            seconds=seconds,
            cached=cached,
            error=error,
            internal=is_internal_step(vertex.name),
        )
        index = self._position.get(number)
        first = index is None
        if index is None:
            index = len(self._steps)
            self._position[number] = index
            self._steps.append(step)
        else:
            self._steps[index] = step
        if error is not None:
            self._errored_lines[index] = list(vertex.lines)
        else:
            self._errored_lines.pop(index, None)
        return step if first else None

    # -- results

    @property
    def steps(self) -> list[Step]:
        """Finished steps in the order they first finished (a copy)."""
        return list(self._steps)

    @property
    def current(self) -> RunningStep | None:
        """The most recently active vertex that has not finished, or None."""
        if not self._open:
            return None
        vertex = next(reversed(self._open.values()))
        return RunningStep(vertex.name, vertex.started)

    @property
    def trailer(self) -> list[str]:
        """Non-blank lines after (or between) the vertices, outside the `------` blocks."""
        return list(self._trailer)

    @property
    def error_message(self) -> str | None:
        """The final solve error (see `solve_error`); meaningful only after a non-zero exit."""
        return solve_error(self._trailer)

    @property
    def failed_step(self) -> Step | None:
        """The step that failed the build, or None (see `_failed_index`)."""
        index = _failed_index(self._steps, self.error_message)
        return None if index is None else self._steps[index]

    def log_tail(self, n: int = 20) -> list[str]:
        """The last `n` output lines of `failed_step` (log timestamps removed), or []."""
        index = _failed_index(self._steps, self.error_message)
        if index is None or n <= 0:
            return []
        return self._errored_lines.get(index, [])[-n:]
