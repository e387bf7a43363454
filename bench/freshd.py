"""A second, truly wiped dockerd for P3 ("fresh daemon"), started and stopped by the harness.

It runs in its own network namespace: a dockerd started with `--bridge=none` deletes the host's
`docker0` (moby's removeDefaultBridgeInterface, see dev/services.sh), which would break the
other engineers' builds on the shared daemon. Inside the namespace there is no docker0 to delete.
The registry on the host's 127.0.0.1 is reached through forward.py (TCP -> unix socket -> TCP),
so the daemon still pulls from 127.0.0.1:5000 (an insecure-by-default loopback registry).
With network=True (fresh_cases.py's P4-FRESH: the base's gem stage runs apt-get) the daemon also
gets a bridge of its own inside the namespace and an HTTP proxy to Debian's archive (_network).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import tools
from tools import DEV_HOME, DOCKER, REGISTRY, BenchError, log_line

FORWARD = Path(__file__).with_name("forward.py")
START_TIMEOUT = 60.0
# network=True: the namespace's own bridge gets this address, its HTTP proxy listens on it. The
# namespace is the daemon's alone, so the subnet cannot clash with the host's.
PROXY_IP, PROXY_PORT = "172.31.254.1", 3142


def _wait_until_up(sock: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [DOCKER, "-H", f"unix://{sock}", "version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return
        time.sleep(0.3)
    raise BenchError(f"the fresh dockerd did not answer on {sock} within {START_TIMEOUT:.0f} s")


def _kill(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM one process we started, then SIGKILL if it lingers."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (a zombie, e.g. an orphan nobody reaps yet, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _unmount_under(*roots: Path) -> None:
    """Lazy-unmount anything a killed daemon left mounted under our own directories."""
    mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    points = [line.split()[1] for line in mounts]
    for point in sorted(points, key=len, reverse=True):
        if any(point.startswith(str(root)) for root in roots):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _engine26_root() -> Path:
    return DEV_HOME / "engine26" / "root"


def _dockerd(run_dir: Path) -> str:
    """The daemon of the engine being measured: the system's, or engine 26's on its own
    containerd with the containerd image store on (as dev/engine26.sh starts it)."""
    if tools.CURRENT_ENGINE.name == "system":
        return "dockerd"
    (run_dir / "daemon.json").write_text('{"features": {"containerd-snapshotter": true}}\n')
    return (
        f"{_engine26_root()}/usr/sbin/dockerd --config-file {run_dir}/daemon.json "
        f"--containerd {run_dir}/containerd.sock"
    )


def _engine26_prefix(run_dir: Path, data_root: Path) -> str:
    """Shell that starts engine 26's own containerd (in the same namespace) and waits for it."""
    if tools.CURRENT_ENGINE.name == "system":
        return ""
    root = _engine26_root()
    (run_dir / "containerd.toml").write_text(
        f'version = 2\nroot = "{data_root}/containerd"\nstate = "{run_dir}/ctd-state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{run_dir}/containerd.sock"\n'
        f'[ttrpc]\n  address = "{run_dir}/containerd.sock.ttrpc"\n'
    )
    ctr = f"{root}/usr/bin/ctr -a {run_dir}/containerd.sock version >/dev/null 2>&1"
    return (
        f"export PATH={root}/usr/bin:{root}/usr/sbin:$PATH && "
        f"{{ containerd --config {run_dir}/containerd.toml & echo $! > {run_dir}/ctd.pid; }} && "
        f"for i in $(seq 1 100); do {ctr} && break; sleep 0.2; done && "
    )


def _network(run_dir: Path, env: dict[str, str]) -> tuple[str, str, list[str]]:
    """For a daemon whose RUN steps need the network: its own bridge inside the namespace (BuildKit
    runs no RUN step without one: "network bridge not found") and an HTTP proxy, forward.py's, on
    the bridge's address; a fresh DOCKER_CONFIG names it, so buildx hands every build the proxy
    build args (which are not part of BuildKit's cache keys). Returns the dockerd network flags,
    the namespace-side shell and the host side's argv."""
    proxy_sock = run_dir / "proxy.sock"
    config = run_dir / "docker-config"
    config.mkdir()
    proxies = {"httpProxy": f"http://{PROXY_IP}:{PROXY_PORT}", "noProxy": "localhost,127.0.0.1"}
    (config / "config.json").write_text(json.dumps({"proxies": {"default": proxies}}) + "\n")
    env["DOCKER_CONFIG"] = str(config)
    inside = (
        f"{{ {sys.executable} {FORWARD} tcp-to-unix 0.0.0.0:{PROXY_PORT} "
        f"{proxy_sock} & echo $! > {run_dir}/proxy-fwd.pid; }} && "
    )
    host = [sys.executable, str(FORWARD), "http-proxy", str(proxy_sock)]
    return f"--bip={PROXY_IP}/24", inside, host


@contextmanager
def fresh_daemon(workdir: Path, *, network: bool = False) -> Iterator[dict[str, str]]:
    """Start an empty dockerd; yield env additions (DOCKER_HOST; with network=True also a fresh
    DOCKER_CONFIG naming its HTTP proxy, see _network); stop and delete it after."""
    run_dir = Path(tempfile.mkdtemp(prefix="bfd-", dir="/tmp"))  # short: unix socket paths
    data_root = workdir / f"freshd-{os.getpid()}"
    shutil.rmtree(data_root, ignore_errors=True)
    sock, reg_sock = run_dir / "docker.sock", run_dir / "registry.sock"
    py = sys.executable
    env = {"DOCKER_HOST": f"unix://{sock}"}
    bridge, inside, host_proxy = "--bridge=none", "", None
    if network:
        bridge, inside, argv = _network(run_dir, env)
        host_proxy = subprocess.Popen(argv)
    host_fwd = subprocess.Popen([py, str(FORWARD), "unix-to-tcp", str(reg_sock), REGISTRY])
    script = (
        "ip link set lo up && "
        f"{{ {py} {FORWARD} tcp-to-unix {REGISTRY} {reg_sock} & echo $! > {run_dir}/fwd.pid; }} && "
        f"{inside}{_engine26_prefix(run_dir, data_root)}"
        f"exec {_dockerd(run_dir)} --data-root {data_root} --exec-root {run_dir}/exec "
        f"--pidfile {run_dir}/docker.pid -H unix://{sock} {bridge} --iptables=false "
        "--ip-masq=false --log-level=warn"
    )
    log_file = (workdir / "freshd.log").open("ab")
    daemon = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", script], stdout=log_file, stderr=log_file
    )
    log_line(f"# fresh dockerd pid {daemon.pid} data-root {data_root}")
    try:
        _wait_until_up(sock)
        yield env
    finally:
        timer = time.monotonic()
        _kill(daemon.pid)
        daemon.wait(timeout=10)
        log_line(f"# fresh dockerd stopped in {time.monotonic() - timer:.1f}s")
        for pid_file in (run_dir / "ctd.pid", run_dir / "fwd.pid", run_dir / "proxy-fwd.pid"):
            if pid_file.is_file():
                _kill(int(pid_file.read_text().strip()), timeout=10)
        for host_side in (host_fwd, host_proxy):
            if host_side is not None:
                host_side.terminate()
                host_side.wait(timeout=10)
        log_file.close()
        _unmount_under(data_root, run_dir)
        shutil.rmtree(data_root, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
