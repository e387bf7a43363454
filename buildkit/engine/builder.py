"""BuildKit through the docker CLI, as a subprocess (the SDK cannot drive BuildKit).

`docker buildx build` where the plugin exists, otherwise `DOCKER_BUILDKIT=1 docker build` with a
CLI older than 23 (those have BuildKit built in). Parents are passed as build args (`FROM ${…}`)
because BuildKit v0.8 has no named contexts. Every build exports inline cache and imports the
layer's previous images from the registry, so a fresh machine reuses the registry's layers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from buildkit import cachedir, log, proc
from buildkit.engine.progress import PlainProgressParser, Step
from buildkit.errors import BuildFailedError, BuildKitUnavailableError, CommandNotFoundError
from buildkit.fsutil import atomic_write_json, read_json

MIN_API_VERSION = (1, 39)  # Docker 18.09: the first engine with BuildKit


@dataclass(frozen=True, kw_only=True)
class Engine:
    """How to invoke BuildKit on this machine."""

    cli: str
    buildx: bool
    description: str


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    label: str  # layer name, for progress lines
    dockerfile: Path
    context: Path
    tags: Sequence[str]
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    cache_from: Sequence[str] = ()
    no_cache: bool = False
    platform: str | None = None
    secrets: Mapping[str, Path] = field(default_factory=dict)  # id -> file, never the value


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    image_id: str
    seconds: float
    steps: tuple[Step, ...]


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+", maxsplit=1)[0].split("-", maxsplit=1)[0].split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


# Where the docker CLI looks for plugins besides $DOCKER_CONFIG/cli-plugins.
_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
_ENGINE_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "BUILDX_BUILDER")


@functools.cache
def detect(cli: str | None = None, cache_dir: Path | None = None) -> Engine:
    """Find a BuildKit-capable docker CLI or raise an error naming the missing piece.

    With a cache dir, the answer is kept there under a fingerprint of the CLI binary, every
    place its buildx plugin may be, its config file and the environment that selects a daemon:
    the two probes are Go CLI starts (~75 ms side by side) on every building run otherwise."""
    cli = cli or os.environ.get("IMGBUILD_DOCKER", "docker")
    fingerprint = _fingerprint(cli) if cache_dir is not None else None
    path = cachedir.engine_facts(cache_dir) if cache_dir is not None else None
    if path is not None and fingerprint is not None:
        known = read_json(path)
        if isinstance(known, dict) and known.get("fingerprint") == fingerprint:
            with contextlib.suppress(KeyError, TypeError):
                return Engine(
                    cli=cli, buildx=bool(known["buildx"]), description=str(known["description"])
                )
    engine = _probe(cli)
    if path is not None and fingerprint is not None:
        record = {"fingerprint": fingerprint, "buildx": engine.buildx}
        atomic_write_json(path, {**record, "description": engine.description})
    return engine


def _fingerprint(cli: str) -> str | None:
    found = shutil.which(cli)
    if found is None:
        return None  # _probe says what is missing
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    files = [Path(found), config_dir / "config.json", config_dir / "cli-plugins" / "docker-buildx"]
    files += [Path(d) / "docker-buildx" for d in _PLUGIN_DIRS]
    parts = [cli, *(_stat(f) for f in files), *(os.environ.get(k, "") for k in _ENGINE_ENV)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _stat(path: Path) -> str:
    try:
        real = path.resolve()
        st = real.stat()
    except OSError:
        return "-"
    return f"{real}:{st.st_mtime_ns}:{st.st_size}"


def _probe(cli: str) -> Engine:
    probes = (
        [cli, "buildx", "version"],
        [cli, "version", "--format", "{{.Client.Version}}|{{.Server.APIVersion}}"],
    )
    try:
        # Side by side: each is a Go CLI start (60 to 100 ms here) before the first build.
        with ThreadPoolExecutor(max_workers=2) as pool:
            buildx, client = pool.map(
                lambda argv: proc.run(argv, check=False, quiet=True, timeout=20), probes
            )
    except CommandNotFoundError:
        raise BuildKitUnavailableError(
            f"the docker CLI '{cli}' is not on PATH; install docker.io (make services does)"
        ) from None
    client_version, _, api_version = client.stdout.strip().partition("|")
    if api_version and _version_tuple(api_version) < MIN_API_VERSION:
        raise BuildKitUnavailableError(
            f"the Docker engine speaks API {api_version}, older than 1.39 (Docker 18.09) which "
            "BuildKit needs; upgrade the engine"
        )
    if buildx.returncode == 0:
        version = buildx.stdout.split()[1] if len(buildx.stdout.split()) > 1 else "?"
        return Engine(cli=cli, buildx=True, description=f"docker buildx {version}")
    if client_version and _version_tuple(client_version) < (23,):
        return Engine(cli=cli, buildx=False, description=f"docker {client_version} (BuildKit)")
    raise BuildKitUnavailableError(
        f"'{cli}' {client_version or '?'} has no buildx plugin and is too new for "
        "DOCKER_BUILDKIT=1 without it; install docker-buildx (make services does) or set "
        "IMGBUILD_DOCKER to a docker CLI older than 23"
    )


def build_argv(engine: Engine, request: BuildRequest, workdir: Path) -> list[str]:
    """The full command line; one flag per line so it reads like the docs."""
    argv = [engine.cli, "buildx", "build", "--load"] if engine.buildx else [engine.cli, "build"]
    argv += ["--progress=plain", "-f", str(request.dockerfile)]
    argv += ["--iidfile", str(workdir / "iid")]
    if engine.buildx:
        argv += ["--cache-to", "type=inline"]
    else:
        argv += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    for name, value in request.build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    for name, value in request.labels.items():
        argv += ["--label", f"{name}={value}"]
    for ref in request.cache_from:
        argv += ["--cache-from", ref]
    for tag in request.tags:
        argv += ["-t", tag]
    for secret_id, path in request.secrets.items():
        argv += ["--secret", f"id={secret_id},src={path}"]
    if request.no_cache:
        argv.append("--no-cache")
    if request.platform:
        argv += ["--platform", request.platform]
    argv.append(str(request.context))
    return argv


class _ProgressView:
    """Feeds BuildKit's plain output to the parser and shows it: live line or plain lines."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.parser = PlainProgressParser()
        self.interactive = log.is_interactive()
        self.timer = log.Timer()

    def __call__(self, line: str) -> None:
        step = self.parser.feed(line)
        if not self.interactive:
            log.plain(f"[{self.label}] {line}" if line else line)
            return
        if step is not None and not step.internal:
            state = (
                "cached" if step.cached else ("FAILED" if step.error else f"{step.seconds:.1f}s")
            )
            log.info(f"[{self.label}] {step.name} … {state}")
        current = self.parser.current
        if current is not None:
            log.live(f"[{self.label}] {self.timer.seconds:5.1f}s {current[0]}")


def build(
    engine: Engine, request: BuildRequest, extra_env: Mapping[str, str] | None = None
) -> BuildResult:
    """Run one build to completion; a failure raises BuildFailedError with the failing step."""
    env = {"DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain", **(extra_env or {})}
    named = env.get("BUILDX_BUILDER") or os.environ.get("BUILDX_BUILDER")
    if named and not engine.buildx:
        raise BuildKitUnavailableError(
            f"the buildx builder '{named}' needs docker buildx, and "
            f"{engine.description} has none; install docker-buildx or drop the builder"
        )
    with tempfile.TemporaryDirectory(prefix="imgbuild-") as tmp:
        workdir = Path(tmp)
        view = _ProgressView(request.label)
        timer = log.Timer()
        result = proc.stream(build_argv(engine, request, workdir), view, env=env)
        seconds = timer.seconds
        if result.returncode != 0:
            _raise_builder_unavailable(view.parser, result.stdout)
            raise BuildFailedError(_failure_message(request, view.parser, result.stdout))
        image_id = (workdir / "iid").read_text(encoding="utf-8").strip()
    return BuildResult(image_id=image_id, seconds=seconds, steps=tuple(view.parser.steps))


_NO_BUILDER = re.compile(r'no builder "([^"]+)" found')
_OTHER_CONTEXT = re.compile(r"use `docker --context=(\S+) buildx` to switch to context")
_BUILDING_WITH = re.compile(r'building with "([^"]+)" instance using (\S+) driver')


def _raise_builder_unavailable(parser: PlainProgressParser, output: str) -> None:
    """A builder that does not exist, cannot be used from here or does not answer is a setup
    error (exit 6) naming it, not a failed build."""
    if found := _NO_BUILDER.search(output):
        name = found.group(1)
        raise BuildKitUnavailableError(
            f"no buildx builder '{name}'; create it "
            f"(docker buildx create --name {name} …, docs/remote-engine.md) or pick one "
            "`docker buildx ls` lists"
        )
    if found := _OTHER_CONTEXT.search(output):
        name = found.group(1)
        raise BuildKitUnavailableError(
            f"the buildx builder '{name}' is docker context {name}'s own (docker driver), which "
            f"buildx builds with only from that context; set DOCKER_CONTEXT={name} (or "
            "DOCKER_HOST to its engine) instead of naming it as the builder"
        )
    failed = parser.failed_step
    using = _BUILDING_WITH.search(output)
    if using and failed is not None and failed.name.endswith("waiting for connection"):
        name, driver = using.groups()
        raise BuildKitUnavailableError(
            f"the buildx builder '{name}' ({driver} driver) does not answer "
            f"({failed.error or parser.error_message or 'no connection'}); "
            f"`docker buildx inspect --bootstrap {name}` shows why"
        )


def _failure_message(request: BuildRequest, parser: PlainProgressParser, output: str) -> str:
    # Decided by the exit code, not by ERROR lines: a missing --cache-from image is an ERROR
    # vertex in a build that succeeds.
    failed = parser.failed_step
    if failed is not None:
        tail = " | ".join([line.strip() for line in parser.log_tail(20) if line.strip()][-3:])
        detail = f"step '{failed.name}' failed: {failed.error}"
        if tail:
            detail += f" (last output: {tail})"
    else:
        lines = [line for line in output.splitlines() if line.strip()]
        detail = parser.error_message or (lines[-1] if lines else "no output")
    return (
        f"building the {request.label} image ({request.dockerfile}) failed: {proc.redact(detail)}"
    )
