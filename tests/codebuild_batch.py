"""A local CodeBuild batch runner for tests: runs a buildspec's `batch.build-graph` the way
CodeBuild runs a batch build, each entry a build of its own through the mini CodeBuild
(tests/codebuild_runner.py).

- The graph is checked as CodeBuild checks it (BATCH_SPEC_VALIDATION_ERROR): identifiers of
  letters, digits and underscores, fewer than 128 characters, unique; `depend-on` names only
  entries listed before; `env` only with keys a build-graph entry has.
- Each entry gets what a child build gets: its own checkout of the source (a `git clone` of the
  source at the batch's commit, else a copy: CodeBuild's DOWNLOAD_SOURCE), its own build
  environment (`engine(identifier, workdir)`: a context manager the caller gives, e.g. a fresh
  dockerd with an empty data root, torn down after the build), its own shell and state.
- Variables, lowest first: the buildspec's `env.variables`, the project's (`project_env`), the
  batch's source variables (`batch_env`: CODEBUILD_SOURCE_VERSION, CODEBUILD_RESOLVED_SOURCE_
  VERSION, CODEBUILD_WEBHOOK_*, the same for every child), the child's own (CODEBUILD_BUILD_ID
  `<project>:<uuid>` and its ARN, CODEBUILD_BATCH_BUILD_IDENTIFIER, CODEBUILD_SRC_DIR,
  CODEBUILD_INITIATOR = the batch's id, which started it), then the engine's (DOCKER_HOST...),
  then the entry's `env.variables`, which override the buildspec's as CodeBuild's do.
  (The child's CODEBUILD_INITIATOR and id format are this runner's assumption, not observed.)
- Scheduling: an entry starts when every entry it depends on SUCCEEDED, at most `parallel` at
  once. An entry whose dependency did not succeed never runs and is FAILED ("dependency ... did
  not succeed"). `fast-fail: true`: the first failure (of an entry without `ignore-failure`)
  stops the running builds (STOPPED) and nothing else starts (STOPPED, never ran). The batch
  succeeds when every entry SUCCEEDED or failed with `ignore-failure: true`.
- `buildspec:` in an entry names another buildspec file in the checkout; the entry's `image`,
  `compute-type`, `type`, `privileged-mode` and `fleet` are recorded but not emulated (one kind
  of environment here).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, cast

import yaml

from tests.codebuild_runner import BuildResult, BuildspecError, Runner

IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,127}")
ENTRY_KEYS = {"identifier", "buildspec", "debug-session", "depend-on", "env", "ignore-failure"}
ENV_KEYS = {"compute-type", "fleet", "image", "privileged-mode", "type", "variables"}


class Environment(Protocol):
    """A child build's environment: its variables (DOCKER_HOST...) and, after the build, what it
    holds (for the test's "built once" count)."""

    env: Mapping[str, str]

    def records(self) -> dict[str, Any]: ...


EngineFactory = Callable[[str, Path], AbstractContextManager[Environment]]


@dataclass(frozen=True)
class Entry:
    identifier: str
    depend_on: tuple[str, ...]
    variables: dict[str, str]
    buildspec: str | None
    ignore_failure: bool
    settings: dict[str, Any]  # image, compute-type...: recorded only


@dataclass
class NodeRecord:
    entry: Entry
    status: str = "PENDING"  # SUCCEEDED, FAILED, STOPPED
    reason: str = ""
    started: float | None = None  # time.monotonic()
    ended: float | None = None
    exit_code: int | None = None
    build_id: str = ""
    workdir: Path | None = None  # its checkout (CODEBUILD_SRC_DIR)
    result: BuildResult | None = None
    engine: dict[str, Any] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.started is not None

    @property
    def seconds(self) -> float:
        return (self.ended or 0.0) - (self.started or 0.0) if self.ran else 0.0


@dataclass
class BatchResult:
    batch_id: str
    nodes: dict[str, NodeRecord]
    started: float
    ended: float

    @property
    def succeeded(self) -> bool:
        return all(
            n.status == "SUCCEEDED" or (n.status == "FAILED" and n.entry.ignore_failure and n.ran)
            for n in self.nodes.values()
        )

    @property
    def wall_seconds(self) -> float:
        return self.ended - self.started

    def statuses(self) -> dict[str, str]:
        return {name: node.status for name, node in self.nodes.items()}

    def summary(self) -> str:
        lines = [f"batch {self.batch_id}: {'SUCCEEDED' if self.succeeded else 'FAILED'}"]
        for name, node in self.nodes.items():
            at = f" {node.started - self.started:6.1f}s +{node.seconds:6.1f}s" if node.ran else ""
            lines.append(f"  {name}: {node.status}{at} {node.reason}".rstrip())
        return "\n".join(lines)


def parse_graph(spec: Mapping[str, Any]) -> tuple[list[Entry], bool]:
    """The build-graph's entries (in order) and fast-fail, refused as CodeBuild refuses them."""
    batch = spec.get("batch")
    if not isinstance(batch, dict) or not isinstance(batch.get("build-graph"), list):
        raise BuildspecError("no batch.build-graph in the buildspec")
    entries: list[Entry] = []
    for raw in batch["build-graph"]:
        entries.append(_entry(raw, {e.identifier for e in entries}))
    return entries, bool(batch.get("fast-fail", False))


def _entry(raw: Any, before: set[str]) -> Entry:
    if not isinstance(raw, dict) or set(raw) - ENTRY_KEYS:
        raise BuildspecError(f"build-graph entry {raw!r}: unknown keys")
    ident = str(raw.get("identifier", ""))
    if not IDENTIFIER.fullmatch(ident):
        raise BuildspecError(
            f"Build Identifiers {ident} must contain only alphanumeric characters and "
            "underscores and be less than 128 characters in length"
        )
    if ident in before:
        raise BuildspecError(f"build identifier {ident} is used twice")
    depend_on = tuple(str(d) for d in raw.get("depend-on") or ())
    unknown = [d for d in depend_on if d not in before]
    if unknown:
        raise BuildspecError(f"{ident}: depend-on {unknown} not defined before it")
    env = raw.get("env") or {}
    if set(env) - ENV_KEYS:
        raise BuildspecError(f"{ident}: unknown env keys {sorted(set(env) - ENV_KEYS)}")
    variables = {str(k): str(v) for k, v in (env.get("variables") or {}).items()}
    settings = {k: v for k, v in env.items() if k != "variables"}
    return Entry(
        identifier=ident,
        depend_on=depend_on,
        variables=variables,
        buildspec=raw.get("buildspec"),
        ignore_failure=bool(raw.get("ignore-failure", False)),
        settings=settings,
    )


class _NoEngine:
    env: Mapping[str, str] = {}

    def records(self) -> dict[str, Any]:
        return {}


@contextmanager
def no_engine(_identifier: str, _workdir: Path) -> Iterator[Environment]:
    yield _NoEngine()


class BatchRunner:
    """Runs one batch: `source` is the checked-out repository (a git work tree, or any folder),
    `workdir` where the children's checkouts and state go."""

    def __init__(
        self,
        source: Path,
        workdir: Path,
        *,
        engine: EngineFactory = no_engine,
        parallel: int = 3,
        project: str = "imgbuild-batch",
        project_env: Mapping[str, str] | None = None,
        batch_env: Mapping[str, str] | None = None,
        timeout: float = 1800,
        stream: TextIO | None = None,
    ) -> None:
        self.source = source
        self.workdir = workdir
        self.engine = engine
        self.parallel = parallel
        self.project = project
        self.project_env = dict(project_env or {})
        self.batch_env = dict(batch_env or {})
        self.timeout = timeout
        self.stream = stream
        self.stop = threading.Event()
        self.batch_id = f"{project}:{uuid.uuid4()}"

    def run(self, buildspec: Path | str) -> BatchResult:
        """Run the batch of the buildspec at `buildspec` (relative to the source, or absolute)."""
        path = Path(buildspec) if Path(buildspec).is_absolute() else self.source / buildspec
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries, fast_fail = parse_graph(spec)
        records = {e.identifier: NodeRecord(entry=e) for e in entries}
        started = time.monotonic()
        self._schedule(records, fast_fail, path)
        return BatchResult(self.batch_id, records, started, time.monotonic())

    def _schedule(self, records: dict[str, NodeRecord], fast_fail: bool, spec: Path) -> None:
        pending = list(records.values())
        running: dict[Future[None], NodeRecord] = {}
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while pending or running:
                for node in list(pending):
                    status = self._ready(node, records)
                    if status == "wait" or (status == "run" and len(running) >= self.parallel):
                        continue
                    pending.remove(node)
                    if status == "run":
                        running[pool.submit(self._build, node, spec)] = node
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    node = running.pop(future)
                    future.result()
                    failed = node.status != "SUCCEEDED" and not node.entry.ignore_failure
                    if failed and fast_fail and not self.stop.is_set():
                        self._log(f"[Batch] fast-fail: {node.entry.identifier} {node.status}")
                        self.stop.set()

    def _ready(self, node: NodeRecord, records: Mapping[str, NodeRecord]) -> str:
        """ "run", "wait", or "done" after recording why the node never runs."""
        deps = [records[d] for d in node.entry.depend_on]
        blocked = [d for d in deps if d.status not in ("PENDING", "SUCCEEDED")]
        if blocked:
            node.status = "FAILED"
            node.reason = f"dependency {blocked[0].entry.identifier} did not succeed"
            return "done"
        if self.stop.is_set():
            node.status, node.reason = "STOPPED", "the batch failed fast"
            return "done"
        return "run" if all(d.status == "SUCCEEDED" for d in deps) else "wait"

    def _checkout(self, dest: Path) -> None:
        if (self.source / ".git").exists():
            subprocess.run(
                ["git", "clone", "-q", str(self.source), str(dest)],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        else:
            shutil.copytree(self.source, dest, symlinks=True)

    def _build(self, node: NodeRecord, spec: Path) -> None:
        entry = node.entry
        node.started = time.monotonic()
        node.build_id = f"{self.project}:{uuid.uuid4()}"
        base = self.workdir / entry.identifier
        node.workdir = base / "src"
        self._log(f"[Batch] {entry.identifier}: started as {node.build_id}")
        try:
            base.mkdir(parents=True)
            self._checkout(node.workdir)
            buildspec = node.workdir / entry.buildspec if entry.buildspec else spec
            with self.engine(entry.identifier, base) as environment:
                runner = Runner(
                    state_dir=str(base / "state"),
                    timeout=self.timeout,
                    stream=self._child_stream(entry.identifier),
                    stop=self.stop,
                )
                env = self._child_env(node, environment.env)
                node.result = runner.run(buildspec, env)
                node.engine = environment.records()
            node.exit_code = node.result.exit_code
            node.status = _status(node.result)
        except Exception as exc:  # the environment did not start, the checkout failed...
            node.status, node.reason = "FAILED", f"{type(exc).__name__}: {exc}"
        node.ended = time.monotonic()
        self._log(f"[Batch] {entry.identifier}: {node.status} after {node.seconds:.1f}s")

    def _child_env(self, node: NodeRecord, engine_env: Mapping[str, str]) -> dict[str, str]:
        arn_prefix = "arn:aws:codebuild:us-east-1:000000000000:build"
        child = {
            "CODEBUILD_BUILD_ID": node.build_id,
            "CODEBUILD_BUILD_ARN": f"{arn_prefix}/{node.build_id}",
            "CODEBUILD_BATCH_BUILD_IDENTIFIER": node.entry.identifier,
            "CODEBUILD_INITIATOR": self.batch_id,
            "CODEBUILD_SRC_DIR": str(node.workdir),
            "CODEBUILD_START_TIME": str(int(time.time() * 1000)),
        }
        return {
            **self.project_env,
            **self.batch_env,
            **child,
            **engine_env,
            **node.entry.variables,
        }

    def _child_stream(self, identifier: str) -> TextIO | None:
        if self.stream is None:
            return None
        return cast(TextIO, _Prefixed(self.stream, identifier))

    def _log(self, line: str) -> None:
        if self.stream is not None:
            print(line, file=self.stream, flush=True)


def _status(result: BuildResult) -> str:
    if result.stopped:
        return "STOPPED"
    return "SUCCEEDED" if result.succeeded else "FAILED"


class _Prefixed:
    """A stream that prefixes each line with the child's identifier (children log at once)."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream = stream
        self.prefix = prefix

    def write(self, text: str) -> int:
        lines = [f"[{self.prefix}] {line}" if line else line for line in text.split("\n")]
        return self.stream.write("\n".join(lines))

    def flush(self) -> None:
        self.stream.flush()


def main(argv: Sequence[str]) -> int:
    """`python tests/codebuild_batch.py BUILDSPEC [SRC_DIR]`: run its batch here, no engines."""
    import tempfile

    src = Path(argv[1] if len(argv) > 1 else ".").resolve()
    with tempfile.TemporaryDirectory() as work:
        result = BatchRunner(src, Path(work), stream=sys.stdout).run(argv[0])
    print(result.summary())
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
