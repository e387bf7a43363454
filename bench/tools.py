"""Shared plumbing of the benchmark: paths, timed commands, samples, registry storage, machine."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEV_HOME = Path(os.environ.get("IMGBUILD_DEV_HOME") or "~/.cache/imgbuild-dev").expanduser()
BENCH_HOME = DEV_HOME / "bench"
VENV = DEV_HOME / "venv"
REGISTRY = os.environ.get("IMGBUILD_DEV_REGISTRY", "127.0.0.1:5000")
# The registry's filesystem storage: P5 reads its growth, not the client's own account.
REGISTRY_DATA = Path(
    os.environ.get("BENCH_REGISTRY_DATA")
    or DEV_HOME / f"registry-{REGISTRY.replace(':', '_')}" / "data"
)
REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER = os.environ.get("BENCH_DOCKER", "docker")
LOG = BENCH_HOME / "last-run.log"


# The engines a run can measure on: the system one, and engine 26 (Docker 26 with the containerd
# image store, brought up by `make services`; its socket is in the dev env file).
ENGINES = ("system", "engine26")


@dataclass(frozen=True)
class EngineChoice:
    name: str  # "system" or "engine26"
    host: str  # DOCKER_HOST for it; "" = whatever the environment says

    @property
    def suffix(self) -> str:
        """Appended to app names and work dirs: each engine builds and pushes its own images."""
        return "" if self.name == "system" else "-e26"


def engine_choice(name: str) -> EngineChoice:
    if name == "system":
        return EngineChoice("system", os.environ.get("DOCKER_HOST", ""))
    host = dev_env().get("IMGBUILD_DEV_ENGINE26_HOST", "")
    if not host:
        raise BenchError(
            "engine 26 is not set up (no IMGBUILD_DEV_ENGINE26_HOST); run make services"
        )
    return EngineChoice("engine26", host)


def use_engine(choice: EngineChoice) -> None:
    """Point every later docker and imgbuild command of this process at `choice`."""
    global CURRENT_ENGINE
    CURRENT_ENGINE = choice
    if choice.host:
        os.environ["DOCKER_HOST"] = choice.host
    else:
        os.environ.pop("DOCKER_HOST", None)


CURRENT_ENGINE = EngineChoice("system", "")


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and shows the output's tail."""


def dev_env() -> dict[str, str]:
    """os.environ plus the `export K=V` lines of the dev env file (make services writes it)."""
    env = dict(os.environ)
    env_file = DEV_HOME / "env"
    if env_file.is_file():
        for line in env_file.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.removeprefix("export ").partition("=")
            if sep and key.isidentifier():
                env.setdefault(key, value.strip("'\""))
    return env


def log_line(text: str) -> None:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600,
    check: bool = True,
    stdin: str | None = None,
) -> tuple[float, str]:
    """Run a command to completion; return (wall seconds, combined output). Output goes to LOG."""
    log_line(f"$ {' '.join(argv)}")
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    log_line(proc.stdout)
    log_line(f"# exit {proc.returncode} in {seconds:.3f}s")
    if check and proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise BenchError(f"{' '.join(argv[:4])} … failed (exit {proc.returncode}):\n{tail}")
    return seconds, proc.stdout


@dataclass
class Samples:
    """Repeated measurements of one side of a case."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self) -> str:
        if len(self.values) < 2:
            return ""
        return f" ({min(self.values):.3g}–{max(self.values):.3g})"


# --------------------------------------------------------------------------------------------
# Registry: manifests over HTTP, bytes stored on disk


MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
# Engine 26 with the containerd store pushes an OCI index: the image and its attestation.
ACCEPT = ", ".join(
    (
        MANIFEST_V2,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def _raw_manifest(ref: str, reference: str | None = None) -> bytes:
    from buildkit.engine.reference import normalize

    parsed = normalize(ref)
    url = f"http://{parsed.domain}/v2/{parsed.path}/manifests/{reference or parsed.tag_or_digest}"
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as response:
        raw: bytes = response.read()
    return raw


def _is_attestation(entry: dict[str, Any]) -> bool:
    kind = (entry.get("annotations") or {}).get("vnd.docker.reference.type")
    return bool(kind == "attestation-manifest")


def manifest(ref: str) -> dict[str, Any]:
    """The image manifest of `host/repo:tag` (through an index to its image, never the
    attestation) from the (plain-HTTP, loopback) registry."""
    body: dict[str, Any] = json.loads(_raw_manifest(ref))
    for entry in body.get("manifests") or ():
        if not _is_attestation(entry):
            return dict(json.loads(_raw_manifest(ref, str(entry["digest"]))))
    return body


def metadata_bytes(ref: str) -> int:
    """Bytes every push of a new image stores besides its layers: the manifest and config, and
    where the engine pushes an index, the index, the attestation's manifest, config and
    provenance document too."""
    raw = _raw_manifest(ref)
    body = json.loads(raw)
    if "manifests" not in body:
        return len(raw) + int(body["config"]["size"])
    total = len(raw)
    for entry in body["manifests"]:
        child_raw = _raw_manifest(ref, str(entry["digest"]))
        child = json.loads(child_raw)
        total += len(child_raw) + int(child["config"]["size"])
        if _is_attestation(entry):
            total += sum(int(layer["size"]) for layer in child.get("layers") or ())
    return total


def manifest_bytes(ref: str) -> int:
    """Bytes of the manifest `ref` names plus the blobs it lists (config, layers), as stored;
    0 when the registry has no such tag (an OCI artifact, say, that was not pushed)."""
    try:
        raw = _raw_manifest(ref)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return 0
        raise
    body = json.loads(raw)
    blobs = [body.get("config") or {}, *(body.get("layers") or ())]
    return len(raw) + sum(int(blob.get("size") or 0) for blob in blobs)


def layer_sizes(ref: str) -> dict[str, int]:
    layers = manifest(ref).get("layers") or []
    assert isinstance(layers, list)
    return {str(layer["digest"]): int(layer["size"]) for layer in layers}


def blob_sizes() -> dict[str, int]:
    """digest hex -> stored size of every blob in the registry's filesystem storage."""
    root = REGISTRY_DATA / "docker" / "registry" / "v2" / "blobs" / "sha256"
    sizes: dict[str, int] = {}
    if not root.is_dir():
        return sizes
    for data in root.glob("*/*/data"):
        sizes[data.parent.name] = data.stat().st_size
    return sizes


def repo_blobs(repository: str) -> set[str]:
    """Digests the registry links into one repository (layers, configs and manifests)."""
    repo_dir = REGISTRY_DATA / "docker" / "registry" / "v2" / "repositories" / repository
    found: set[str] = set()
    for sub in ("_layers/sha256", "_manifests/revisions/sha256"):
        directory = repo_dir / sub
        if directory.is_dir():
            found.update(p.name for p in directory.iterdir())
    return found


def stored_growth(before: Mapping[str, int], repository: str) -> int:
    """Bytes of blobs that appeared since `before` and belong to `repository`.

    The registry is shared with other engineers, so a plain `du` delta could count their
    pushes; restricting new blobs to the ones linked into our own repository keeps it ours.
    """
    after = blob_sizes()
    mine = repo_blobs(repository)
    return sum(size for digest, size in after.items() if digest not in before and digest in mine)


# --------------------------------------------------------------------------------------------
# Machine description printed with the table


def machine() -> dict[str, str]:
    info = {
        "cores": str(len(os.sched_getaffinity(0))),
        "cpu": _cpu_model(),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    _, out = run([DOCKER, "version", "--format", "{{.Server.Version}}"], check=False)
    info["engine"] = out.strip().splitlines()[-1] if out.strip() else "?"
    _, out = run([DOCKER, "buildx", "version"], check=False)
    info["buildx"] = " ".join(out.split()[1:2]) or "?"
    _, out = run([DOCKER, "buildx", "inspect"], check=False)
    kit = [line.split(":", 1)[1].strip() for line in out.splitlines() if "BuildKit" in line]
    info["buildkit"] = kit[0] if kit else "?"
    _, out = run([DOCKER, "info", "--format", "{{.Driver}}"], check=False)
    info["storage"] = out.strip() or "?"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"
