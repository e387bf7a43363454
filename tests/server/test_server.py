"""`imgbuild server` and the launcher: real server processes on a private socket directory,
real clients started as `python -m buildkit`, compared with the same commands run in-process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.server import launcher
from buildkit.server import protocol as serverproto
from tests.conftest import Project

TIMEOUT = 60


def run(env: dict[str, str], *args: str, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "buildkit", *args],
        env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
        check=False,
    )  # fmt: skip


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose `imgbuild` reaches a server on a private directory; stopped after."""
    directory = tmp_path / "srv"
    env = {**os.environ, serverproto.DIR_ENV: str(directory)}
    env.pop(serverproto.MODE_ENV, None)
    yield env
    run(env, "server", "stop")
    for sock in directory.glob("s-*.sock"):
        if serverproto.request(str(sock), {"op": "status"}) is not None:
            pytest.fail(f"a server still answers on {sock} after `server stop`")


@pytest.fixture
def started(server_env: dict[str, str]) -> dict[str, str]:
    result = run(server_env, "server", "start", "--idle", "10")
    assert result.returncode == 0, result.stderr
    assert "server started" in result.stderr
    return server_env


def status(env: dict[str, str]) -> dict[str, object]:
    result = run(env, "server", "status", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_status_without_a_server_says_so_and_exits_1(server_env: dict[str, str]) -> None:
    result = run(server_env, "server", "status")
    assert result.returncode == 1
    assert "no server for this version" in result.stdout


def test_commands_run_on_the_server_behave_as_in_process(
    started: dict[str, str], tmp_path: Path
) -> None:
    before = status(started)["served"]
    (tmp_path / "imgbuild.yaml").write_text("name: shop\nregistyr: x\n")
    on_server = run(started, "plan", cwd=tmp_path)
    off = run({**started, serverproto.MODE_ENV: "off"}, "plan", cwd=tmp_path)
    assert status(started)["served"] == before + 2  # the plan and the status just asked
    # Same exit code (3: config), same one-line error naming the file and the key: the worker
    # ran in the client's directory with its stderr.
    assert on_server.returncode == off.returncode == 3
    assert on_server.stderr == off.stderr
    assert "did you mean 'registry'" in on_server.stderr
    assert "imgbuild.yaml" in on_server.stderr


def test_worker_gets_the_clients_environment_and_stdout(started: dict[str, str]) -> None:
    env = {**started, "IMGBUILD_REGISTRY": "registry.example:5000"}
    on_server = run(env, "server", "status", "--json")
    assert json.loads(on_server.stdout)["pid"] != os.getpid()
    version = run(env, "--help")
    assert version.returncode == 0
    assert "Build, push and measure" in version.stdout  # stdout, not stderr: fds were passed


def test_exit_codes_and_usage_errors_pass_through(started: dict[str, str]) -> None:
    result = run(started, "no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_a_second_start_is_a_no_op_and_stop_stops_it(started: dict[str, str]) -> None:
    pid = status(started)["pid"]
    again = run(started, "server", "start")
    assert again.returncode == 0
    assert f"already running (pid {pid}" in again.stderr
    stop = run(started, "server", "stop")
    assert stop.returncode == 0
    assert f"pid {pid}" in stop.stderr
    assert run(started, "server", "status").returncode == 1


def test_a_server_of_other_code_is_never_reached(started: dict[str, str]) -> None:
    """A different fingerprint (edited or upgraded code) is a different socket."""
    path = serverproto.socket_path(started[serverproto.DIR_ENV], "00000000")
    assert launcher.run_on_server(path, ["--help"]) is None


def test_launcher_falls_back_when_the_socket_is_dead(server_env: dict[str, str]) -> None:
    directory = Path(server_env[serverproto.DIR_ENV])
    directory.mkdir(mode=0o700)
    path = serverproto.socket_path(str(directory))
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)  # bound, never listening: a crashed server's leftover
    dead.close()
    result = run(server_env, "--help")
    assert result.returncode == 0
    assert "Build, push and measure" in result.stdout


def test_ctrl_c_reaches_the_worker(started: dict[str, str], tmp_path: Path) -> None:
    """The client forwards SIGINT; the worker's command ends as interrupted (130)."""
    fifo = tmp_path / "imgbuild.yaml"
    os.mkfifo(fifo)
    # A config file that is a FIFO blocks the command reading it: it is running when the
    # signal arrives.
    client = subprocess.Popen(
        [sys.executable, "-m", "buildkit", "-c", str(fifo), "plan"],
        env=started, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    writer = os.open(fifo, os.O_WRONLY)  # returns once the worker opened the FIFO: it runs
    try:
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=TIMEOUT)
    finally:
        os.close(writer)
    assert client.returncode == 130, err
    assert "interrupted" in err


def test_idle_server_exits_by_itself(server_env: dict[str, str]) -> None:
    directory = Path(server_env[serverproto.DIR_ENV])
    path = serverproto.socket_path(str(directory))
    proc = subprocess.Popen(
        [sys.executable, "-m", "buildkit.server", "--socket", path, "--idle", "0.5"],
        env=server_env,
    )
    assert proc.wait(timeout=TIMEOUT) == 0
    assert not Path(path).exists()


def test_worker_lost_is_reported_with_its_own_exit_code(
    started: dict[str, str], tmp_path: Path
) -> None:
    """A worker killed mid-command: the client says so (exit 70), never hangs."""
    path = serverproto.socket_path(started[serverproto.DIR_ENV])
    fifo = tmp_path / "imgbuild.yaml"
    os.mkfifo(fifo)
    sock = serverproto.connect(path)
    assert sock is not None
    read_end, write_end = os.pipe()
    with sock:
        request = {"op": "run", "argv": ["-c", str(fifo), "plan"],
                   "cwd": str(tmp_path), "env": started, "umask": 0o022}  # fmt: skip
        serverproto.send(sock, request, fds=[read_end, 1, 2])
        started_msg, _ = serverproto.receive(sock)
        assert started_msg is not None
        pid = started_msg["pid"]
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        code = launcher._wait_for_worker(sock, pid)
        assert time.monotonic() < deadline
    os.close(read_end)
    os.close(write_end)
    assert code == launcher.WORKER_LOST_EXIT


def test_start_refuses_a_directory_others_can_enter(server_env: dict[str, str]) -> None:
    directory = Path(server_env[serverproto.DIR_ENV])
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    result = run(server_env, "server", "start")
    assert result.returncode == 13, result.stderr
    assert f"{directory} must be owned by you and mode 0700" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2  # the command echo and one error line


@pytest.mark.docker
def test_workers_hash_the_app_on_the_watchers_word_and_still_see_edits(
    started: dict[str, str], project: Project
) -> None:
    """The app is watched after the first command that hashed it; later plans trust the
    watcher for unchanged directories and still see an edited file."""
    on = {serverproto.DIR_ENV: started[serverproto.DIR_ENV], serverproto.MODE_ENV: ""}
    # Directories changed in the last 2 s are never cached (a second change in the same mtime
    # tick would go unseen): the fresh copy must age past that window before it can be trusted.
    time.sleep(2.1)
    first = project.run("plan", extra_env=on)
    assert first.returncode == 0, first.stderr
    watched = status(started)["watched"]
    assert isinstance(watched, dict)
    root = next(r for r in watched if Path(r).resolve() == project.root.resolve())
    assert watched[root] >= 3  # the app, app/ and its subdirectories
    for _ in range(2):  # the second run saves the token, the third trusts it
        again = project.run("--debug", "plan", extra_env=on)
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout
    walks = re.findall(r"hashed \S+/hello: (\d+) of (\d+) directories trusted", again.stderr)
    assert walks, again.stderr
    # the app context (and the base's inputs): every directory trusted, nothing changed
    assert all(trusted == walked for trusted, walked in walks), again.stderr
    assert max(int(walked) for _, walked in walks) > 3, again.stderr
    (project.root / "app.rb").write_text((project.root / "app.rb").read_text() + "# edit\n")
    served = project.run("plan", extra_env=on)
    alone = project.run("plan")
    assert served.returncode == alone.returncode == 0, served.stderr
    assert served.stdout != first.stdout  # a new app key: the edit was seen
    assert served.stdout == alone.stdout  # the same key as a walk that stats every file
