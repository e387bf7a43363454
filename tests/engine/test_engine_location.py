"""docker_api.remote_engine: which DOCKER_HOST values put the engine on another machine, where the
ports it publishes (verify's smoke check) are out of this machine's reach."""

from __future__ import annotations

import pytest

from buildkit.engine import docker_api


@pytest.mark.parametrize(
    "host",
    [
        "unix:///var/run/docker.sock",
        "tcp://127.0.0.1:2376",
        "tcp://127.0.0.2:2375",
        "tcp://localhost:2376",
        "tcp://[::1]:2376",
        "ssh://builder@localhost",
    ],
)
def test_this_machine(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert docker_api.remote_engine() is None


@pytest.mark.parametrize(
    "host", ["tcp://10.0.0.5:2376", "tcp://build.example:2376", "ssh://me@build.example"]
)
def test_another_machine(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert docker_api.remote_engine() == f"DOCKER_HOST={host}"
