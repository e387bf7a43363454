"""engine/docker_api on the real engines: a push returns the digest the registry stores, whether
the daemon keeps a classic image (a manifest) or a containerd-store one (an index, with or without
new layers to upload)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.engine import docker_api
from tests.conftest import DevEnv
from tests.engines import Engine
from tests.registry_fixtures import registry_digest

pytestmark = [pytest.mark.docker, pytest.mark.engines]


@pytest.fixture
def sdk(engine: Engine) -> Iterator[None]:
    """docker_api keeps one client per process: make it connect to this test's engine."""
    docker_api.client.cache_clear()
    yield
    docker_api.client.cache_clear()


def _build(dev: DevEnv, tmp_path: Path, ref: str) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {dev.base_image}\nRUN echo {uuid.uuid4()} > /f\n")
    subprocess.run(
        ["docker", "buildx", "build", "--load", "-t", ref, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def test_push_returns_the_registry_digest_new_layers_or_none(
    dev: DevEnv, engine: Engine, sdk: None, tmp_path: Path
) -> None:
    repo = f"{dev.registry}/docker-api-{engine.name}"
    first = f"{repo}:{uuid.uuid4().hex[:8]}"
    _build(dev, tmp_path, first)
    digest = docker_api.push(first)
    assert digest == registry_digest(dev.registry, repo.split("/", 1)[1], first.rsplit(":", 1)[1])

    # The same image under a second tag: every layer is in the registry already, so the
    # containerd store's stream carries no aux digest, only its "digest: … size: …" status.
    second = f"{repo}:{uuid.uuid4().hex[:8]}"
    docker_api.tag(first, second)
    assert docker_api.push(second) == digest
    local = docker_api.local_image(second)
    assert local is not None
    if engine.name == "engine26":
        assert local.id == digest  # the containerd store's image ID is the pushed index


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("redis", ("redis", "latest")),
        ("redis:7", ("redis", "7")),
        ("localhost:5000/foo", ("localhost:5000/foo", "latest")),
        ("[::1]:5000/foo", ("[::1]:5000/foo", "latest")),
        ("127.0.0.1:5000/team/postgres:15", ("127.0.0.1:5000/team/postgres", "15")),
        ("postgres@sha256:" + "a" * 64, ("postgres", "sha256:" + "a" * 64)),
        ("host:5000/pg:15@sha256:" + "a" * 64, ("host:5000/pg", "sha256:" + "a" * 64)),
    ],
)
def test_pull_splits_the_tag_as_docker_does(ref: str, expected: tuple[str, str]) -> None:
    assert docker_api._repository_and_tag(ref) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("redis:7", ("redis", "7")),
        ("localhost:5000/foo", ("localhost:5000/foo", "latest")),
        ("[::1]:5000/team/foo:v2", ("[::1]:5000/team/foo", "v2")),
    ],
)
def test_tag_and_push_split_the_tag_as_docker_does(ref: str, expected: tuple[str, str]) -> None:
    assert docker_api._name_and_tag(ref) == expected
