"""What each engine can do, measured on the real daemons, checked against docs/engines.md.

Every capability is probed by a real build (or push) on each engine the machine has: the system
engine (Debian 12: Docker 20.10, BuildKit v0.8), engine 26 with the containerd image store, and
engine 26 on its classic store (an empty daemon started here: what Debian 13's system engine is).
The doc's table must say what the probes find, so it cannot drift from the engines.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, DevEnv, _read_dev_env
from tests.engines import start_fresh_engine26
from tests.registry_fixtures import image_manifest, is_attestation, registry_manifest

pytestmark = [pytest.mark.docker]

DOC = REPO / "docs" / "engines.md"


@dataclass(frozen=True)
class Probe:
    engine: str  # the doc's column: "20.10", "26", "26+containerd"
    host: str
    registry: str
    base_image: str
    workdir: Path

    def build(self, dockerfile: str, *args: str, files: dict[str, str] | None = None) -> bool:
        context = self.workdir / uuid.uuid4().hex[:8]
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile.replace("{BASE}", self.base_image))
        for name, text in (files or {}).items():
            (context / name).write_text(text)
        env = {**os.environ, "DOCKER_HOST": self.host}
        argv = ["docker", "buildx", "build", "--progress=plain", *args, str(context)]
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        return result.returncode == 0

    def ref(self, what: str) -> str:
        return f"{self.registry}/engine-probe-{self.engine.replace('+', '-')}:{what}"


def heredoc(p: Probe) -> bool:
    return p.build("FROM {BASE}\nRUN <<EOT\ntest 1 = 1\nEOT\n", "--load")


def copy_link(p: Probe) -> bool:
    return p.build("FROM {BASE}\nCOPY --link a /a\n", "--load", files={"a": "a"})


def copy_chmod(p: Probe) -> bool:
    return p.build("FROM {BASE}\nCOPY --chmod=0755 a /a\n", "--load", files={"a": "a"})


def named_context(p: Probe) -> bool:
    context = f"base=docker-image://{p.base_image}"
    return p.build("FROM base\nRUN true\n", "--load", "--build-context", context)


def registry_cache_export(p: Probe) -> bool:
    cache = f"type=registry,ref={p.ref('cache')},mode=max"
    return p.build(f"FROM {{BASE}}\nRUN echo {uuid.uuid4()}\n", "--load", "--cache-to", cache)


def attestations_on_push(p: Probe) -> bool:
    """A plain `buildx build --push`: does the registry get an index with a provenance entry?"""
    ref = p.ref(f"push-{uuid.uuid4().hex[:8]}")
    if not p.build(f"FROM {{BASE}}\nRUN echo {uuid.uuid4()}\n", "--push", "-t", ref):
        return False
    return any(is_attestation(entry) for entry in registry_manifest(ref).get("manifests") or ())


def zstd_layers(p: Probe) -> bool:
    ref = p.ref(f"zstd-{uuid.uuid4().hex[:8]}")
    output = f"type=image,name={ref},push=true,compression=zstd,force-compression=true"
    if not p.build(f"FROM {{BASE}}\nRUN echo {uuid.uuid4()} > /f\n", "--output", output):
        return False
    layers = image_manifest(ref).get("layers") or ()
    return any("zstd" in str(layer.get("mediaType")) for layer in layers)


def containerd_store(p: Probe) -> bool:
    env = {**os.environ, "DOCKER_HOST": p.host}
    out = subprocess.run(
        ["docker", "info", "--format", "{{json .DriverStatus}}"],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return "io.containerd.snapshotter" in out


CAPABILITIES: dict[str, Callable[[Probe], bool]] = {
    "containerd image store": containerd_store,
    "heredocs (`RUN <<EOT`)": heredoc,
    "`COPY --link`": copy_link,
    "`COPY --chmod`": copy_chmod,
    "named contexts (`--build-context`)": named_context,
    "registry cache export on the default builder": registry_cache_export,
    "attestations on `--push` (an image index)": attestations_on_push,
    "zstd layers": zstd_layers,
}


def _doc_table() -> dict[str, dict[str, bool]]:
    """capability -> {column: yes/no} from the table of docs/engines.md."""
    lines = [ln for ln in DOC.read_text().splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    columns = {i: re.sub(r"\s.*", "", name) for i, name in enumerate(header) if i}
    table: dict[str, dict[str, bool]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in CAPABILITIES:
            table[cells[0]] = {
                columns[i]: cells[i].lower().startswith("yes")
                for i in columns
                if i < len(cells) and columns[i] in ("20.10", "26", "26+containerd")
            }
    return table


@pytest.fixture(scope="module")
def probes(dev: DevEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Probe]]:
    """One probe per engine the machine has, named by its doc column."""
    work = tmp_path_factory.mktemp("probes")
    found: dict[str, Probe] = {}

    def add(host: str) -> None:
        env = {**os.environ, "DOCKER_HOST": host} if host else dict(os.environ)
        version = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=env, capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        major = "20.10" if version.startswith("20.10") else version.split(".")[0]
        probe = Probe(major, host, dev.registry, dev.base_image, work)
        column = f"{major}+containerd" if containerd_store(probe) else major
        found[column] = Probe(column, host, dev.registry, dev.base_image, work)

    add(os.environ.get("DOCKER_HOST", ""))
    engine26 = _read_dev_env().get("IMGBUILD_DEV_ENGINE26_HOST", "")
    if not engine26:
        pytest.fail("engine 26 is not set up; run `make services`")
    add(engine26)
    root = tmp_path_factory.mktemp("classic26")
    binaries = dev.home / "engine26" / "root"
    with start_fresh_engine26(root, binaries, containerd_store=False) as classic:
        add(classic.host)
        yield found


@pytest.mark.parametrize("capability", list(CAPABILITIES))
def test_docs_engine_table_matches_the_engines(capability: str, probes: dict[str, Probe]) -> None:
    documented = _doc_table().get(capability)
    assert documented is not None, f"docs/engines.md has no row {capability!r}"
    measured = {column: CAPABILITIES[capability](probe) for column, probe in probes.items()}
    assert set(measured) <= set(documented), f"the doc has no column for {set(measured)}"
    assert {c: documented[c] for c in measured} == measured
