"""Fixtures of the reliability tests: a second empty registry, and removal of the local images a
test's runs created under its own throwaway registry addresses (nothing else is touched)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry_fixtures import ScratchRegistry, start_scratch_registry


class OwnImages:
    """Registry addresses only this test uses (free ports): at teardown every local tag under
    them is removed (`docker rmi --no-prune` of exactly those refs)."""

    def __init__(self) -> None:
        self.prefixes: list[str] = []

    def under(self, address: str) -> str:
        self.prefixes.append(f"{address}/")
        return address

    def cleanup(self) -> None:
        import docker
        import docker.errors

        if not self.prefixes:
            return
        client = docker.from_env(timeout=120)
        try:
            refs = [
                tag
                for image in client.api.images()
                for tag in image.get("RepoTags") or ()
                if tag.startswith(tuple(self.prefixes))
            ]
            for ref in refs:
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_image(ref, noprune=True)
        finally:
            client.close()


@pytest.fixture
def own_images() -> Iterator[OwnImages]:
    images = OwnImages()
    try:
        yield images
    finally:
        images.cleanup()


@pytest.fixture
def clean_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchRegistry]:
    """A second empty registry: where the reference ("clean") pushes go."""
    root: Path = tmp_path_factory.mktemp("clean-registry")
    registry = start_scratch_registry(root)
    try:
        yield registry
    finally:
        registry.stop()
