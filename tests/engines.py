"""Daemons the suite starts itself: an empty system-kind dockerd and an empty engine 26 (Docker 26
on its own containerd, containerd image store on), each with its own data root, exec root, socket
and bridge, in the host's network namespace so they reach the loopback registry like the others.

Never `--bridge=none` here: a second dockerd started with it deletes the host's docker0 (moby's
removeDefaultBridgeInterface), breaking the main daemon's networking.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tls_certs import ServerCerts

FRESH_BRIDGE = "imgbfresh0"
#: Every bridge the suite's fresh daemons use, with the address set on it before a daemon starts:
#: one given a bridge without an address picks the first free pool itself, and two starting at
#: once pick the same. Apart from each other, so daemons that build at once never share a subnet
#: (the first three are what dockerd picked on the dev machine, kept so live daemons keep theirs).
BRIDGES = {
    FRESH_BRIDGE: "172.18.0.1/16",
    "imgbtls0": "172.19.0.1/16",
    "imgbtls1": "172.20.0.1/16",
    **{f"imgbbg{n}": f"172.29.{10 + n}.1/24" for n in range(3)},
}
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Engine:
    """The engine a test runs on: "system" (whatever `docker` answers) or "engine26"."""

    name: str
    host: str


@dataclass(frozen=True)
class FreshDaemon:
    """A second, empty daemon: what a wiped daemon or a new CI machine looks like."""

    host: str
    tcp_host: str | None = None  # tcp://127.0.0.1:PORT when it also listens with TLS


@dataclass(frozen=True)
class TlsListener:
    """A TCP listener on 127.0.0.1 that requires TLS and a client certificate the CA signed."""

    port: int
    certs: ServerCerts

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        certs = self.certs
        return [
            "-H",
            self.host,
            "--tlsverify",
            f"--tlscacert={certs.ca}",
            f"--tlscert={certs.cert}",
            f"--tlskey={certs.key}",
        ]


def ensure_bridge(name: str) -> str:
    """The bridge `name` of BRIDGES, up and with its address (any other one replaced): the
    address, where a proxy for its daemon's RUN steps can listen."""
    if name not in BRIDGES:
        pytest.fail(f"bridge {name} has no address in tests/engines.py BRIDGES; add one")
    cidr = BRIDGES[name]
    probe = subprocess.run(["ip", "link", "show", name], check=False, capture_output=True)
    if probe.returncode:
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", name], capture_output=True, text=True, check=True
    ).stdout
    if f"inet {cidr} " not in shown:
        subprocess.run(["ip", "addr", "flush", "dev", name], check=True)
        subprocess.run(["ip", "addr", "add", cidr, "dev", name], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    return cidr.split("/")[0]


def _wait_for(argv: list[str], proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while subprocess.run(argv, capture_output=True, check=False).returncode:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"{what} did not start; see {log}")
        time.sleep(0.2)  # polling the daemon's socket, bounded by the deadline


@contextmanager
def _process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _dockerd_argv(dockerd: list[str], root: Path, sock: Path, bridge: str) -> list[str]:
    return [
        *dockerd,
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "exec"),
        "--pidfile",
        str(root / "dockerd.pid"),
        "-H",
        f"unix://{sock}",
        f"--bridge={bridge}",
        "--iptables=false",
        "--ip-masq=false",
    ]


def _unmount_under(root: Path) -> None:
    """Unmount what a daemon left mounted under root (deepest first), so removing its data root
    never reaches into a mount."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    prefix = f"{root.resolve()}/"
    for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@contextmanager
def start_fresh_daemon(
    root: Path,
    dockerd: list[str],
    env: dict[str, str] | None = None,
    *,
    tls: TlsListener | None = None,
    bridge: str = FRESH_BRIDGE,
) -> Iterator[FreshDaemon]:
    """An empty dockerd under `root` (the system's, or engine 26's with `dockerd` and `env`);
    with `tls`, also listening on 127.0.0.1:PORT with TLS (and nowhere else on TCP).
    Daemons that build at the same time need a `bridge` each (one of BRIDGES, which sets its
    address): each allocates its containers' addresses on its bridge without asking the others."""
    ensure_bridge(bridge)
    sock = root / "docker.sock"
    host = f"unix://{sock}"
    log = root / "dockerd.log"
    argv = _dockerd_argv(dockerd, root, sock, bridge) + (tls.argv() if tls else [])
    try:
        with _process(argv, log, env) as proc:
            _wait_for(["docker", "-H", host, "version"], proc, "a second dockerd", log)
            yield FreshDaemon(host=host, tcp_host=tls.host if tls else None)
    finally:
        _unmount_under(root)
        shutil.rmtree(root / "data", ignore_errors=True)


def _containerd_config(root: Path, sock: Path) -> Path:
    config = root / "containerd.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{root}/containerd-root"\n'
        f'state = "{root}/containerd-state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
        f'[ttrpc]\n  address = "{sock}.ttrpc"\n'
        f'[debug]\n  address = "{root}/containerd-debug.sock"\n'
    )
    return config


@contextmanager
def start_fresh_engine26(
    root: Path,
    binaries: Path,
    *,
    containerd_store: bool = True,
    tls: TlsListener | None = None,
    bridge: str = FRESH_BRIDGE,
) -> Iterator[FreshDaemon]:
    """An empty engine 26 on its own containerd (containerd image store on, unless asked for the
    classic one, as Debian 13's own docker.io runs) from the binaries that `make services`
    unpacked under `binaries` (dev/engine26.sh); `tls` and `bridge` as for start_fresh_daemon."""
    if not (binaries / "usr" / "sbin" / "dockerd").is_file():
        pytest.fail(f"engine 26 is not unpacked under {binaries}; run `make services`")
    path = f"{binaries}/usr/bin:{binaries}/usr/sbin:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path}
    env.pop("DOCKER_HOST", None)
    ctd_sock = root / "containerd.sock"
    store = "true" if containerd_store else "false"
    (root / "daemon.json").write_text(f'{{"features": {{"containerd-snapshotter": {store}}}}}\n')
    ctd_argv = [
        str(binaries / "usr" / "bin" / "containerd"),
        "--config",
        str(_containerd_config(root, ctd_sock)),
    ]
    ctr = [str(binaries / "usr" / "bin" / "ctr"), "-a", str(ctd_sock), "version"]
    dockerd = [
        str(binaries / "usr" / "sbin" / "dockerd"),
        "--config-file",
        str(root / "daemon.json"),
        "--containerd",
        str(ctd_sock),
    ]
    try:
        with ExitStack() as stack:
            log = root / "containerd.log"
            containerd = stack.enter_context(_process(ctd_argv, log, env))
            _wait_for(ctr, containerd, "engine 26's containerd", log)
            fresh = start_fresh_daemon(root, dockerd, env, tls=tls, bridge=bridge)
            yield stack.enter_context(fresh)
    finally:
        _unmount_under(root)  # containerd's snapshots, once containerd is gone
        shutil.rmtree(root / "containerd-root", ignore_errors=True)
