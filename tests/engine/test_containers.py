"""engine.containers on the real daemon: networks, aliases, exec, copying out, cleanup, reaping."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.engine import containers, docker_api
from tests.conftest import DevEnv


@pytest.fixture
def image(dev: DevEnv) -> str:
    if docker_api.local_image(dev.base_image) is None:
        docker_api.pull(dev.base_image)
    return dev.base_image


@pytest.fixture
def run_id() -> Iterator[str]:
    run = f"test-{uuid.uuid4().hex[:8]}"
    yield run
    containers.remove_run(run)


def _names(kind: str, run: str) -> list[str]:
    out = subprocess.run(
        [
            "docker",
            kind,
            "ls",
            *(["-a"] if kind == "container" else []),
            "-q",
            "--filter",
            f"label={containers.RUN_LABEL}={run}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.split()


def _network(run: str, labels: dict[str, str]) -> str:
    name = f"imgbuild-verify-{run}"
    containers.create_network(name, labels)
    return name


def _box(
    image: str,
    run: str,
    role: str,
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    publish: int | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """A started container of the run, on its network (which exists) as `role`."""
    container = containers.create_container(
        image,
        name=f"imgbuild-verify-{run}-{role}",
        network=f"imgbuild-verify-{run}",
        alias=role,
        labels=labels or containers.labels_for(run),
        env=env or {},
        command=command,
        publish=publish,
    )
    containers.start(container)
    return container


def test_containers_reach_each_other_by_alias_and_a_run_is_removed_whole(
    image: str, run_id: str
) -> None:
    _network(run_id, containers.labels_for(run_id))
    server = _box(image, run_id, "db", ["sleep", "300"], env={"GREETING": "hi there"})
    client = _box(image, run_id, "client", ["getent", "hosts", "db"])
    assert containers.wait(client, timeout=30) == 0
    assert containers.logs(client).split()[1:] == ["db"]
    result = containers.exec_in(server, ["sh", "-c", 'echo "$GREETING"; exit 3'])
    assert (result.exit_code, result.output) == (3, "hi there\n")
    assert containers.state(server)["Running"] is True
    assert len(_names("container", run_id)) == 2
    assert len(_names("network", run_id)) == 1

    containers.remove_run(run_id)

    assert _names("container", run_id) == []
    assert _names("network", run_id) == []


def test_a_published_port_is_on_loopback_only(image: str, run_id: str) -> None:
    _network(run_id, containers.labels_for(run_id))
    app = _box(image, run_id, "app", ["sleep", "300"], publish=8080)
    port = containers.host_port(app, 8080)
    out = subprocess.run(
        ["docker", "port", app, "8080/tcp"], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.split() == [f"127.0.0.1:{port}"]


def test_copy_out_takes_matching_files_and_a_missing_path_is_empty(
    image: str, run_id: str, tmp_path: Path
) -> None:
    _network(run_id, containers.labels_for(run_id))
    script = (
        "mkdir -p /out/sub && echo '<a/>' > /out/one.xml && echo '<b/>' > /out/sub/two.xml "
        "&& echo text > /out/notes.txt && ln -s /etc/passwd /out/link.xml"
    )
    box = _box(image, run_id, "box", ["sh", "-c", script])
    assert containers.wait(box, timeout=30) == 0  # stopped: files are still copied out

    written = containers.copy_out(box, "/out", tmp_path)

    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "out/one.xml",
        "out/sub/two.xml",
    ]
    assert (tmp_path / "out" / "sub" / "two.xml").read_text() == "<b/>\n"
    assert containers.copy_out(box, "/nowhere", tmp_path / "none") == []


def test_wait_gives_none_at_its_timeout(image: str, run_id: str) -> None:
    _network(run_id, containers.labels_for(run_id))
    slow = _box(image, run_id, "slow", ["sleep", "300"])
    assert containers.wait(slow, timeout=1) is None


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_reap_orphans_removes_runs_of_dead_owners_only(image: str, tmp_path: Path) -> None:
    """Dead here: reaped. Alive here: kept. A PID of another PID namespace on this host (a build
    container sharing the host's network, so its name): kept, whatever that PID is here."""
    dead, alive, elsewhere = (
        f"test-{what}-{uuid.uuid4().hex[:6]}" for what in ("dead", "alive", "ns")
    )
    pid = _dead_pid()
    owners = {
        dead: containers.owner(pid),
        alive: containers.owner(os.getpid()),
        elsewhere: f"{socket.gethostname()}:4026599999:{pid}",
    }
    try:
        for run, owner in owners.items():
            labels = {containers.RUN_LABEL: run, containers.OWNER_LABEL: owner}
            _network(run, labels)
            _box(image, run, "x", ["sleep", "300"], labels=labels)

        assert containers.reap_orphans() >= 1

        assert _names("container", dead) == []
        assert _names("network", dead) == []
        for kept in (alive, elsewhere):
            assert len(_names("container", kept)) == 1
            assert len(_names("network", kept)) == 1
    finally:
        for run in owners:
            containers.remove_run(run)
