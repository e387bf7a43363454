"""Containers and networks on the Docker daemon, for `imgbuild verify` (through the Docker SDK).

Everything created here carries two labels: the verify run it belongs to, and its owner
(`host:pid-namespace:pid`: a build container that shares the host's network, so its name, has
PIDs of its own, and must not judge the host's runs by them). A run removes its own at the end,
also on errors and signals; a run killed with SIGKILL cannot, so every run first removes what
dead owners in its own host and PID namespace left (`reap_orphans`).
Values of environment variables go to the daemon in the API request body, never to argv or logs.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from buildkit import log
from buildkit.engine import docker_api

RUN_LABEL = "io.imgbuild.verify.run"
OWNER_LABEL = "io.imgbuild.verify.owner"


def _pid_namespace() -> str:
    try:
        return str(Path("/proc/self/ns/pid").readlink()).removeprefix("pid:").strip("[]")
    except OSError:
        return "?"


def _here() -> str:
    """This process's host and PID namespace: where its PIDs mean something."""
    return f"{socket.gethostname()}:{_pid_namespace()}"


def owner(pid: int | None = None) -> str:
    """The owner label of the process pid (default: this one), in this host and namespace."""
    return f"{_here()}:{os.getpid() if pid is None else pid}"


def labels_for(run_id: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, OWNER_LABEL: owner()}


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


def _api() -> Any:
    return docker_api.client().api


def image_present(ref: str) -> bool:
    return docker_api.local_image(ref) is not None


def create_network(name: str, labels: Mapping[str, str]) -> str:
    created: dict[str, Any] = _api().create_network(
        name, driver="bridge", labels=dict(labels), check_duplicate=True
    )
    return str(created["Id"])


def create_container(
    image: str,
    *,
    name: str,
    network: str,
    alias: str,
    labels: Mapping[str, str],
    env: Mapping[str, str],
    command: Sequence[str] | None = None,
    publish: int | None = None,
    user: str | None = None,
    workdir: str | None = None,
) -> str:
    """Create (not start) a container on `network`, reachable there as `alias`; `publish` binds
    that container port to an ephemeral port on 127.0.0.1 (never another address)."""
    api = _api()
    ports = {publish: ("127.0.0.1", None)} if publish else None
    host_config = api.create_host_config(network_mode=network, port_bindings=ports, init=True)
    networking = api.create_networking_config(
        {network: api.create_endpoint_config(aliases=[alias])}
    )
    created = api.create_container(
        image,
        command=list(command) if command is not None else None,
        name=name,
        labels=dict(labels),
        environment=dict(env),
        ports=[publish] if publish else None,
        host_config=host_config,
        networking_config=networking,
        user=user or "",
        working_dir=workdir,
        detach=True,
    )
    return str(created["Id"])


def start(container: str) -> None:
    _api().start(container)


def state(container: str) -> Mapping[str, Any]:
    """The container's State: Running, ExitCode, OOMKilled, ..."""
    info: Mapping[str, Any] = _api().inspect_container(container)["State"]
    return info


def host_port(container: str, port: int) -> int:
    """The 127.0.0.1 port the daemon bound for the container's `port`."""
    ports = _api().inspect_container(container)["NetworkSettings"]["Ports"] or {}
    bindings = ports.get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    raise RuntimeError(f"container {container[:12]} has no published port {port}")


def exec_in(container: str, command: Sequence[str], *, user: str | None = None) -> ExecResult:
    api = _api()
    created = api.exec_create(container, list(command), user=user or "", stdout=True, stderr=True)
    output = api.exec_start(created["Id"], stream=False, demux=False) or b""
    code = api.exec_inspect(created["Id"]).get("ExitCode")
    return ExecResult(
        exit_code=-1 if code is None else int(code), output=output.decode(errors="replace")
    )


def logs(container: str, tail: int | str = "all") -> str:
    raw: bytes = _api().logs(container, stdout=True, stderr=True, tail=tail)
    return raw.decode(errors="replace")


def follow_logs(container: str) -> Iterator[bytes]:
    """The container's output as it comes; ends when the container stops or is removed."""
    stream: Iterator[bytes] = _api().logs(
        container, stdout=True, stderr=True, stream=True, follow=True
    )
    return stream


def wait(container: str, timeout: float) -> int | None:
    """The exit code, or None when the container still runs after `timeout` seconds."""
    import requests

    try:
        result = _api().wait(container, timeout=timeout)
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        return None
    return int(result.get("StatusCode", -1))


def copy_out(container: str, path: str, dest: Path, *, suffix: str = ".xml") -> list[Path]:
    """Copy the files under `path` (a file or a directory in the container) whose names end in
    `suffix` into dest; [] when the path does not exist. Members are written flat under their
    path relative to `path`'s parent, never outside dest (no absolute names, no `..`, no links)."""
    import docker.errors

    try:
        chunks, _ = _api().get_archive(container, path)
        data = b"".join(chunks)
    except docker.errors.NotFound:
        return []
    written = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            rel = PurePosixPath(member.name)
            if not member.isfile() or rel.is_absolute() or ".." in rel.parts:
                continue
            if not rel.name.endswith(suffix):
                continue
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(extracted.read())
            tmp.replace(target)
            written.append(target)
    return written


def remove_container(container: str) -> None:
    import docker.errors

    try:
        _api().remove_container(container, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # "removal already in progress" is fine
        if "already in progress" not in str(exc):
            raise


def remove_network(network: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        _api().remove_network(network)


def owned(run_id: str) -> tuple[list[str], list[str]]:
    """(container ids, network ids) of one verify run."""
    api = _api()
    label = f"{RUN_LABEL}={run_id}"
    containers = [c["Id"] for c in api.containers(all=True, filters={"label": label})]
    networks = [n["Id"] for n in api.networks(filters={"label": label})]
    return containers, networks


def remove_run(run_id: str) -> None:
    """Remove a run's containers (with their anonymous volumes), then its networks."""
    containers, networks = owned(run_id)
    for container in containers:
        remove_container(container)
    for network in networks:
        remove_network(network)


def reap_orphans() -> int:
    """Remove the verify runs whose owner process on this host is gone; their count."""
    api = _api()
    here = _here()
    runs: set[str] = set()
    items = api.containers(all=True, filters={"label": OWNER_LABEL}) + api.networks(
        filters={"label": OWNER_LABEL}
    )
    for item in items:
        labels = item.get("Labels") or {}
        where, _, pid = str(labels.get(OWNER_LABEL, "")).rpartition(":")
        if where == here and pid.isdigit() and not _alive(int(pid)) and labels.get(RUN_LABEL):
            runs.add(labels[RUN_LABEL])
    for run_id in sorted(runs):
        log.info(f"verify: removing what the interrupted verify run {run_id} left behind")
        remove_run(run_id)
    return len(runs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
