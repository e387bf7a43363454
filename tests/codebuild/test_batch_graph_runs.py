"""Issue 18: the batch build-graph of a monorepo's three apps really runs, as CodeBuild runs it.

Three apps (copies of the example): shop and admin on one Ruby, api on another configure option,
all three Ruby images in one repository (`ecr.repositories.ruby`). `codebuild render` makes one
batch.yml of their chains; the local batch runner (tests/codebuild_batch.py) runs its eight
entries, each in a fresh dockerd with an empty data root (a bridge and an HTTP proxy to Debian's
archive of its own: parallel daemons must not share one bridge's addresses), at most three at once.

"Built once" is counted twice: from each entry's `imgbuild --json` (build.json, `built`), and from
the entry's engine after its build: the images tagged in that daemon's fresh data root (a build
tags its image there; an image only pulled as a parent stays in BuildKit's store, untagged).
Docker 20.10 keeps no buildx history to ask instead.

Each run builds every base and app image (a nonce in the base build args, a marker file in the
app); the shop/admin Ruby is the example's image copied into the shared repository, and api's is
built on the suite's daemon first when the registry lacks it (seed_shared_ruby: one compile of
that variant per cold suite), so the ruby entries find both and build nothing.
The one-host comparison then builds the three apps one after another on one fresh engine (fresh
nonces: every base and app again) and prints both wall times.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from buildkit.chain import layers
from buildkit.config import loading as configmod
from tests.codebuild.test_codebuild_run import copy_image, manifest_digest
from tests.codebuild_batch import BatchResult, BatchRunner, Environment
from tests.conftest import EXAMPLE, REPO, DevEnv
from tests.engines import start_fresh_daemon
from tests.fresh_proxy import proxied_docker_config

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PREFIX = "batchgraph"
SHARED_RUBY = f"{PREFIX}-ruby"
APPS = ("shop", "admin", "api")
API_RUBY = '  configure_opts: ["--disable-install-doc", "--disable-install-rdoc"]\n'
#: One bridge per engine slot (at most PARALLEL engines at once; their addresses: engines.BRIDGES).
PARALLEL = 3
SLOTS = [f"imgbbg{n}" for n in range(PARALLEL)]


def _git(root: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    done = subprocess.run(
        ["git", "-C", str(root), *identity, *args],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return done.stdout.strip()


def write_apps(repo: Path, nonce: str) -> None:
    """apps/<name>: the example app with its config (shared Ruby repository, base and app
    made new by `nonce`); api's Ruby has another configure option."""
    example = (EXAMPLE / "imgbuild.yaml").read_text()
    for app in APPS:
        root = repo / "apps" / app
        if not root.is_dir():
            shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("gems-src"))
        text = example.replace("\nname: hello\n", f"\nname: {PREFIX}-{app}\n")
        text = text.replace("\nbase:\n", f'\nbase:\n  build_args: {{BATCH_NONCE: "{nonce}"}}\n')
        if app == "api":
            text = text.replace('  version: "3.3.8"\n', f'  version: "3.3.8"\n{API_RUBY}')
        text += (
            f"ecr:\n  repositories: {{ruby: {SHARED_RUBY}}}\n"
            "codebuild:\n  install: command -v imgbuild\n"
        )
        (root / "imgbuild.yaml").write_text(text)
        (root / "build-marker.txt").write_text(f"{nonce}\n")


def config_paths(repo: Path) -> list[Path]:
    return [repo / "apps" / app / "imgbuild.yaml" for app in APPS]


def seed_shared_ruby(repo: Path, registry: str, cache: Path) -> None:
    """Both Rubies in the shared repository before the graph runs, so its ruby entries find
    them: shop/admin's is the example's image (same key) copied; api's is built on the suite's
    daemon when the registry lacks it. A cold suite compiles that variant once there (minutes),
    and tests/run/test_fleet_integration.py's worker, on the same configure options, then finds
    its steps in that daemon's BuildKit cache: one compile of it per cold run, not one per
    test on fresh engines (which would also run beside each other on the same 2 cores)."""
    shop, _, api = config_paths(repo)
    tag = layers.ruby_spec(configmod.resolve(shop)).tag
    if manifest_digest(registry, SHARED_RUBY, tag) is None and manifest_digest(
        registry, "hello-ruby", tag
    ):
        copy_image(registry, "hello-ruby", SHARED_RUBY, tag)
    if manifest_digest(registry, SHARED_RUBY, layers.ruby_spec(configmod.resolve(api)).tag):
        return
    env = {**os.environ, "IMGBUILD_CACHE_DIR": str(cache), "CI": "true"}
    argv = [sys.executable, "-m", "buildkit", "-c", str(api), "ruby", "--push"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-4000:]


def render(repo: Path) -> None:
    shop, admin, api = config_paths(repo)
    argv = [sys.executable, "-m", "buildkit", "-c", str(shop), "codebuild", "render"]
    argv += ["--batch-config", str(admin), "--batch-config", str(api)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def imgbuild_on_path(folder: Path) -> Path:
    """An `imgbuild` that runs this checkout (the buildspec's install phase only checks it)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "imgbuild"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m buildkit "$@"\n')
    script.chmod(0o755)
    return folder


@dataclass(frozen=True)
class Slot:
    bridge: str
    docker_config: Path


@pytest.fixture(scope="module")
def slots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[queue.Queue[Slot]]:
    """PARALLEL engine slots: a bridge, an HTTP proxy on it, a DOCKER_CONFIG naming the proxy."""
    free: queue.Queue[Slot] = queue.Queue()
    with ExitStack() as proxies:
        for name in SLOTS:
            directory = tmp_path_factory.mktemp(f"docker-config-{name}")
            free.put(Slot(name, proxies.enter_context(proxied_docker_config(directory, name))))
        yield free


class FreshEngine:
    """A child's engine: a fresh dockerd; records = our images tagged in its data root."""

    def __init__(self, host: str, slot: Slot, cache: Path, registry: str) -> None:
        self.host = host
        self.registry = registry
        self.env = {
            "DOCKER_HOST": host,
            "DOCKER_CONFIG": str(slot.docker_config),
            "IMGBUILD_CACHE_DIR": str(cache),  # a new machine: imgbuild's cache is empty too
        }

    def records(self) -> dict[str, Any]:
        listed = subprocess.run(
            ["docker", "-H", self.host, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.split()  # fmt: skip
        ours = sorted(i for i in listed if i.startswith(f"{self.registry}/{PREFIX}-"))
        return {"host": self.host, "images": ours}


@contextmanager
def engine_in_slot(slots: queue.Queue[Slot], root: Path, registry: str) -> Iterator[FreshEngine]:
    slot = slots.get()
    try:
        root.mkdir(parents=True)
        with start_fresh_daemon(root, ["dockerd"], bridge=slot.bridge) as daemon:
            yield FreshEngine(daemon.host, slot, root / "imgbuild-cache", registry)
    finally:
        slots.put(slot)


def webhook_push(commit: str) -> dict[str, str]:
    return {
        "CODEBUILD_SOURCE_VERSION": commit,
        "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
        "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/mono",
        "CODEBUILD_WEBHOOK_TRIGGER": "branch/main",
        "CODEBUILD_WEBHOOK_EVENT": "PUSH",
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/main",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def built_by_node(result: BatchResult) -> dict[str, list[tuple[str, str, str]]]:
    """Per entry: (layer, image, path) of each layer its `imgbuild --json` says it built; path
    "buildkit" (built in the engine) or "native" (an app assembled in the registry, run/native)."""
    found = {}
    for name, node in result.nodes.items():
        assert node.workdir is not None
        doc = json.loads((node.workdir / "imgbuild-reports" / "build.json").read_text())
        found[name] = [
            (lay["name"], lay["image"], lay["path"]) for lay in doc["layers"] if lay["built"]
        ]
    return found


def one_host_plan(repo: Path, work: Path) -> dict[str, list[str]]:
    """What one host computes for each app (a clone, as CodeBuild checks out): its chain."""
    clone = work / "plan-clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, timeout=120)
    plans = {}
    for app, path in zip(APPS, config_paths(clone), strict=True):
        done = subprocess.run(
            [sys.executable, "-m", "buildkit", "-c", str(path), "plan", "--json"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        plans[app] = [layer["image"] for layer in json.loads(done.stdout)["layers"]]
    return plans


def test_monorepo_batch_graph_runs_on_fresh_engines_building_each_layer_once(
    dev: DevEnv, tmp_path: Path, slots: queue.Queue[Slot]
) -> None:
    repo = tmp_path / "mono"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    write_apps(repo, uuid.uuid4().hex[:10])
    seed_shared_ruby(repo, dev.registry, tmp_path / "seed-cache")
    render(repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "three apps")
    commit = _git(repo, "rev-parse", "HEAD")
    engines_root = Path(tempfile.mkdtemp(prefix="bg", dir="/tmp"))  # short unix socket paths
    try:
        result = run_batch(dev, repo, tmp_path, engines_root, slots, commit)
        check_built_once(result, dev.registry)
        check_same_images_as_one_host(result, repo, tmp_path)
        host_seconds = one_host_build(dev, repo, engines_root / "onehost", slots)
    finally:
        shutil.rmtree(engines_root, ignore_errors=True)
    report = (
        f"batch graph ({len(result.nodes)} entries, {PARALLEL} engines at once): "
        f"{result.wall_seconds:.0f} s; one host, the three apps in turn: {host_seconds:.0f} s"
    )
    print(f"\n{result.summary()}\n{report}")


def run_batch(
    dev: DevEnv,
    repo: Path,
    work: Path,
    engines_root: Path,
    slots: queue.Queue[Slot],
    commit: str,
) -> BatchResult:
    bin_dir = imgbuild_on_path(work / "bin")

    @contextmanager
    def engine(ident: str, _workdir: Path) -> Iterator[Environment]:
        with engine_in_slot(slots, engines_root / ident, dev.registry) as fresh:
            yield fresh

    runner = BatchRunner(
        repo,
        work / "batch",
        engine=engine,
        parallel=PARALLEL,
        project="mono-batch",
        project_env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PYTHONPATH": str(REPO),
            "CI": "true",
            "HOME": str(Path.home()),
        },
        batch_env=webhook_push(commit),
        timeout=2400,
        stream=sys.stderr,
    )
    result = runner.run("buildspecs/batch.yml")
    assert result.succeeded, result.summary() + "\n" + failed_logs(result)
    assert list(result.nodes) == [
        "batchgraph_shop_ruby", "batchgraph_api_ruby",
        "batchgraph_shop_base", "batchgraph_admin_base", "batchgraph_api_base",
        "batchgraph_shop_app", "batchgraph_admin_app", "batchgraph_api_app",
    ]  # fmt: skip
    hosts = {node.engine["host"] for node in result.nodes.values()}
    assert len(hosts) == len(result.nodes)  # one fresh engine per entry
    return result


def failed_logs(result: BatchResult) -> str:
    return "\n".join(
        f"--- {name}\n{node.result.text()[-4000:]}"
        for name, node in result.nodes.items()
        if node.result is not None and node.status != "SUCCEEDED"
    )


def check_built_once(result: BatchResult, registry: str) -> None:
    built = built_by_node(result)
    counts = Counter(image for found in built.values() for _, image, _ in found)
    assert all(n == 1 for n in counts.values()), counts
    for name, node in result.nodes.items():
        layer = node.entry.variables["IMGBUILD_LAYER"]
        # Its own layer only: everything below came from what its dependencies pushed.
        assert {lay for lay, _, _ in built[name]} <= {layer}, (name, built[name])
        # The engine agrees: the only images of ours in its data root are those it built with
        # BuildKit (an app assembled in the registry never enters the engine).
        in_engine = sorted(image for _, image, path in built[name] if path == "buildkit")
        assert node.engine["images"] == in_engine, (name, node.engine, built[name])
    for layer in ("base", "app"):
        images = {image for found in built.values() for lay, image, _ in found if lay == layer}
        assert len(images) == len(APPS), (layer, built)
    for image in counts:
        repo_name, tag = image.removeprefix(f"{registry}/").rsplit(":", 1)
        assert manifest_digest(registry, repo_name, tag), f"{image} is not in the registry"


def check_same_images_as_one_host(result: BatchResult, repo: Path, work: Path) -> None:
    plans = one_host_plan(repo, work)
    for app in APPS:
        node = result.nodes[f"{PREFIX}_{app}_app"]
        assert node.workdir is not None
        doc = json.loads((node.workdir / "imgbuild-reports" / "build.json").read_text())
        assert [layer["image"] for layer in doc["layers"]] == plans[app], app
    rubies = {plans[app][0].rsplit(":", 1)[0] for app in APPS}
    assert rubies == {f"{plans['shop'][0].split('/', 1)[0]}/{SHARED_RUBY}"}
    assert plans["shop"][0] == plans["admin"][0] != plans["api"][0]


def one_host_build(dev: DevEnv, repo: Path, root: Path, slots: queue.Queue[Slot]) -> float:
    """The same three apps on one fresh engine, one after another (new nonces: every base and
    app is built again; the Ruby images are found, as in the batch). Returns the wall time."""
    write_apps(repo, uuid.uuid4().hex[:10])
    _git(repo, "commit", "-q", "-am", "one host")
    started = time.monotonic()
    with engine_in_slot(slots, root, dev.registry) as fresh:
        for path in config_paths(repo):
            done = subprocess.run(
                [sys.executable, "-m", "buildkit", "-c", str(path), "app", "--push", "--json"],
                capture_output=True, text=True, timeout=2400, check=False,
                env={**os.environ, **fresh.env, "CI": "true"},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-4000:]
            built = [lay["name"] for lay in json.loads(done.stdout)["layers"] if lay["built"]]
            assert built == ["base", "app"], (path, built)
    return time.monotonic() - started
