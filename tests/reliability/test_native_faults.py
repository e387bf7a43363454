"""Issue 17: the registry-native app path (run/native.py: the app image assembled in the
registry, no daemon) under a registry that fails 20% of requests, and killed mid-upload. Neither
ever leaves a tag in the app repository that points at an image with a missing blob, a rerun
finishes, and the digest it ends with is a clean run's digest of the same source.

The clean runs go to a second registry behind the same proxy address (HoldingProxy.
switch_upstream): the app config records its parent's image name, registry address included, so
only one address gives one digest. Each registry gets a cache dir of its own (two machines)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, layers_by_name
from tests.registry_fixtures import (  # noqa: F401 - fixtures, requested by name
    ScratchRegistry,
    image_manifest,
    scratch_registry_fixture,
)

from .conftest import OwnImages
from .support import (
    HoldingProxy,
    assert_one_line_error,
    blob_status,
    registry_problems,
    registry_tags,
    session_processes,
    stopped_on_exit,
    upload_order_problems,
    wait_for,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAULT_RATIO = 0.2
PUSHES = 8
#: Per run: the client retries a request 3 times within 8 s and a blob upload in 3 sessions, so a
#: bounded 20% keeps every run short while most runs still meet several faults.
MAX_FAULTS_PER_PUSH = 4
#: Exit codes of a run the faults defeat: RegistryError, PushFailedError.
REGISTRY_EXITS = (8, 9)
#: Incompressible, so the layer blob is about as large and its upload lasts.
PAYLOAD_BYTES = 32 << 20
#: Forwarded to the registry before the layer PUT is held: the registry has a partial upload.
HOLD_AFTER_BYTES = 4 << 20


@pytest.fixture
def proxy(scratch_registry: ScratchRegistry) -> Iterator[HoldingProxy]:
    """A HoldingProxy in front of this test's scratch registry (the faulty / killed one)."""
    with HoldingProxy(scratch_registry.address) as holding:
        yield holding


def _run(
    project: Project, registry: str, cache: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return project.run(
        "--registry",
        registry,
        "app",
        "--push",
        "--json",
        *extra,
        extra_env={"IMGBUILD_CACHE_DIR": str(cache)},
        timeout=600,
    )


def _push(project: Project, registry: str, cache: Path) -> dict[str, dict[str, Any]]:
    result = _run(project, registry, cache)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr
    return layers_by_name(json.loads(result.stdout))


def _assembled(project: Project, registry: str, cache: Path) -> dict[str, Any]:
    """A run that assembles a changed app in the registry: its app outcome."""
    app = _push(project, registry, cache)["app"]
    assert (app["path"], app["built"], app["pushed"]) == ("native", True, True), app
    assert app["digest"], app
    return app


def _tag(app: dict[str, Any]) -> str:
    return str(app["image"]).rpartition(":")[2]


def _app_tags_problems(address: str, repo: str) -> list[str]:
    """Every tag of every repository (the app's among them) resolves to an image whose config
    and layers the repository has; the app repository has tags at all."""
    tags = registry_tags(address)
    assert tags.get(repo), f"no tag in {address}/{repo}: {tags}"
    return registry_problems(address)


@dataclass
class _TwoRegistries:
    """One registry address (the proxy's) in front of a faulty and a clean registry; a cache dir
    for each (two machines)."""

    project: Project
    proxy: HoldingProxy
    address: str
    faulty: str
    clean: str
    cache: dict[str, Path]

    @property
    def repo(self) -> str:
        return f"{self.project.name}-app"

    def run(self, upstream: str) -> subprocess.CompletedProcess[str]:
        self.proxy.switch_upstream(upstream)
        return _run(self.project, self.address, self.cache[upstream])

    def settle(
        self, where: str, reference: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """After a faulty run: every tag intact, a rerun without faults finishes, and the digest
        it has is the one a clean run of the same source pushes (`reference`, that run's app
        outcome, when it ran already). Returns the rerun's and the clean run's app outcomes."""
        assert _app_tags_problems(self.faulty, self.repo) == [], f"after {where}"
        self.proxy.switch_upstream(self.faulty)
        rerun = _push(self.project, self.address, self.cache[self.faulty])["app"]
        assert rerun["digest"], f"{where}: {rerun}"
        assert _app_tags_problems(self.faulty, self.repo) == [], f"after the rerun of {where}"
        if reference is None:
            reference = self.clean_run()
        assert rerun["digest"] == reference["digest"], where
        return rerun, reference

    def clean_run(self) -> dict[str, Any]:
        """The app assembled in the clean registry, blobs before the manifest."""
        self.proxy.switch_upstream(self.clean)
        self.proxy.reset_stats()
        app = _assembled(self.project, self.address, self.cache[self.clean])
        assert upload_order_problems(self.proxy.stats.log, self.repo, _tag(app)) == []
        return app


@pytest.fixture
def two_registries(
    project: Project,
    proxy: HoldingProxy,
    scratch_registry: ScratchRegistry,
    clean_registry: ScratchRegistry,
    own_images: OwnImages,
    tmp_path: Path,
) -> _TwoRegistries:
    """ruby, base and the app (BuildKit, the daemon's push, the native path) in both registries,
    without faults."""
    faulty, clean = scratch_registry.address, clean_registry.address
    both = _TwoRegistries(
        project=project,
        proxy=proxy,
        address=own_images.under(proxy.address),
        faulty=faulty,
        clean=clean,
        cache={faulty: tmp_path / "cache-faulty", clean: tmp_path / "cache-clean"},
    )
    for upstream in (clean, faulty):
        proxy.switch_upstream(upstream)
        _push(project, both.address, both.cache[upstream])
    return both


def test_native_pushes_through_a_faulty_registry_match_a_clean_run(
    two_registries: _TwoRegistries,
) -> None:
    both, proxy = two_registries, two_registries.proxy
    faults = failures = 0
    for number in range(PUSHES):
        (both.project.root / "lib" / "fault_push.rb").write_text(f"# native push {number}\n")
        # Odd runs lose answers to requests the registry did apply ("after").
        proxy.inject_faults(
            FAULT_RATIO,
            ("500", "reset"),
            seed=number,
            max_faults=MAX_FAULTS_PER_PUSH,
            when="after" if number % 2 else "before",
        )
        before = proxy.stats.faults_injected
        try:
            result = both.run(both.faulty)
        finally:
            proxy.clear_faults()
        faults += proxy.stats.faults_injected - before
        where = f"run {number}"
        if result.returncode == 0:
            assert "Traceback" not in result.stderr, where
            app = layers_by_name(json.loads(result.stdout))["app"]
            assert (app["path"], app["built"]) == ("native", True), f"{where}: {app}"
            rerun, reference = both.settle(where)
            assert app["digest"] == reference["digest"], where
            assert not rerun["built"], f"{where}: {rerun}"  # nothing left to do
        else:
            assert result.returncode in REGISTRY_EXITS, f"{where}: {result.stderr[-4000:]}"
            assert_one_line_error(result, result.returncode)
            failures += 1
            rerun, _ = both.settle(where)
            assert (rerun["path"], rerun["built"]) == ("native", True), f"{where}: {rerun}"

    print(f"{PUSHES} native runs through faults: {faults} faults, {failures} runs failed")
    assert faults >= PUSHES, f"only {faults} faults in {PUSHES} runs: the proxy was not in the way"
    assert failures < PUSHES, "no run got through 20% faults: the retries do not work"
    assert len(registry_tags(both.faulty)[both.repo]) >= PUSHES  # every content tag is still there


def test_native_push_whose_layer_upload_always_fails_is_one_line_and_tags_nothing(
    two_registries: _TwoRegistries,
) -> None:
    both, proxy = two_registries, two_registries.proxy
    (both.project.root / "lib" / "fault_push.rb").write_text("# every blob PUT fails\n")
    # Every blob upload into the app repository fails, before or after the registry took it.
    proxy.inject_faults(
        1.0,
        ("500", "reset"),
        seed=1,
        methods=["PUT"],
        path_regex=rf"^/v2/{both.repo}/blobs/uploads/",
        max_faults=40,
    )
    try:
        result = both.run(both.faulty)
    finally:
        proxy.clear_faults()
    assert_one_line_error(result, 8, both.address)
    assert "app: assembling" in result.stderr, result.stderr[-3000:]  # the native path
    assert proxy.stats.faults_injected >= 3  # the layer PUT was retried
    rerun, reference = both.settle("a run whose uploads all failed")
    assert (rerun["path"], rerun["built"]) == ("native", True), rerun
    assert _tag(reference) in registry_tags(both.faulty)[both.repo]


def _start(project: Project, registry: str, cache: Path, log: Path) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "buildkit",
                "-c",
                str(project.config),
                "--registry",
                registry,
                "app",
                "--push",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=project.env({"IMGBUILD_CACHE_DIR": str(cache)}),
            text=True,
            start_new_session=True,  # its own session: a child it left behind can be found
        )


def test_kill_during_the_native_layer_upload(
    two_registries: _TwoRegistries, tmp_path: Path
) -> None:
    both, proxy, project = two_registries, two_registries.proxy, two_registries.project
    repo = both.repo
    (project.root / "lib" / "payload.bin").write_bytes(random.Random(17).randbytes(PAYLOAD_BYTES))

    # The reference: the app with the payload, assembled in the clean registry.
    reference = both.clean_run()
    layer = image_manifest(f"{both.clean}/{repo}:{_tag(reference)}")["layers"][-1]
    assert int(layer["size"]) > PAYLOAD_BYTES, layer  # the payload's layer: incompressible

    # The same source into the other registry, killed while the layer's PUT is held.
    proxy.switch_upstream(both.faulty)
    proxy.reset_stats()
    proxy.hold("PUT", rf"^/v2/{repo}/blobs/uploads/", after_bytes=HOLD_AFTER_BYTES)
    log = tmp_path / "killed.log"
    with stopped_on_exit(_start(project, both.address, both.cache[both.faulty], log)) as process:
        wait_for(
            lambda: proxy.held.is_set() or process.poll() is not None,
            300,
            "the app layer's upload to reach the held PUT",
        )
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    proxy.release()
    stderr = log.read_text(errors="replace")
    assert process.returncode == -signal.SIGKILL, stderr[-3000:]
    assert "app: assembling" in stderr, stderr[-3000:]  # the native path
    assert session_processes(process.pid) == []
    assert proxy.stats.bytes_forwarded >= HOLD_AFTER_BYTES  # the registry got part of the layer
    # Killed while the layer was on its way: neither it nor the image's tag is in.
    assert blob_status(both.faulty, repo, str(layer["digest"])) == 404
    assert _tag(reference) not in registry_tags(both.faulty)[repo]

    rerun, _ = both.settle("the killed run", reference)
    assert (rerun["path"], rerun["built"]) == ("native", True), rerun
