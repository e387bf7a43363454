"""A build host that is not this machine's default socket: a second dockerd listening on
127.0.0.1:PORT with TLS (certificates this module makes), reached only through DOCKER_HOST,
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH; a bad certificate, an unreachable host and an ssh:// host
are one line and exit 5 within 10 s; a buildx builder named by `builder:` or BUILDX_BUILDER is
the one `docker buildx` is asked for."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import pytest

from tests.conftest import DevEnv, Project, layers_by_name
from tests.engines import TlsListener, start_fresh_daemon, start_fresh_engine26
from tests.fresh_proxy import proxied_docker_config
from tests.registry_fixtures import registry_digest
from tests.tls_certs import client_certs, make_ca, make_certs

pytestmark = [pytest.mark.docker]

TLS_BRIDGE = "imgbtls0"  # bridges of their own (addresses: tests/engines.py BRIDGES)
TLS26_BRIDGE = "imgbtls1"
ERROR_SECONDS = 10.0


@dataclass(frozen=True)
class TlsEngine:
    host: str  # tcp://127.0.0.1:PORT
    socket: str  # unix://…: the same engine, through its own socket
    client: Path  # a DOCKER_CERT_PATH the engine accepts
    root: Path

    def env(self, cert_path: Path | None = None) -> dict[str, str]:
        return {
            "DOCKER_HOST": self.host,
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(cert_path or self.client),
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsEngine]:
    root = tmp_path_factory.mktemp("tls-dockerd")
    certs = make_certs(root / "certs")
    tls = TlsListener(port=_free_port(), certs=certs.server)
    (root / "daemon").mkdir()
    with start_fresh_daemon(root / "daemon", ["dockerd"], tls=tls, bridge=TLS_BRIDGE) as daemon:
        assert daemon.tcp_host == tls.host
        yield TlsEngine(host=tls.host, socket=daemon.host, client=certs.client, root=root)


def _docker(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI on exactly the engine `env` names (no context, no inherited DOCKER_*)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    argv = ["docker", *args]
    return subprocess.run(
        argv, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def _remote_env(engine: TlsEngine, cert_path: Path | None = None) -> dict[str, str]:
    # Only DOCKER_HOST names an engine: DOCKER_CONTEXT empty keeps any context away, and the
    # app is built by BuildKit (not assembled in the registry) so the engine has to build it.
    # REQUESTS_CA_BUNDLE set, as on many CI hosts: requests would let it win over the engine's
    # ca.pem, and a private CA the docker CLI accepts would fail in the SDK.
    return {
        **engine.env(cert_path),
        "DOCKER_CONTEXT": "",
        "IMGBUILD_NATIVE": "off",
        "REQUESTS_CA_BUNDLE": certifi.where(),
    }


def _change_source(project: Project) -> None:
    (project.root / "lib").mkdir(exist_ok=True)
    (project.root / "lib" / "remote.rb").write_text(f"REMOTE = {time.time_ns()}\n")


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("imgbuild: error:")]
    assert len(errors) == 1, stderr[-2000:]
    return errors[0]


def _timed(
    project: Project, env: Mapping[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    result = project.run("app", "--push", extra_env=env, timeout=60)
    return result, time.monotonic() - start


def _new_base(project: Project) -> None:
    """A base key no registry or engine has (a build arg of its own: in the base key, unused by
    the Dockerfile, so the bundle is the example's) in a repository of its own: no `latest` to
    take BuildKit's inline cache or a gem seed from, so every step runs on the engine."""
    nonce = uuid.uuid4().hex[:12]
    project.edit_config("base:\n", f'base:\n  build_args: {{TLS_BASE_NONCE: "{nonce}"}}\n')
    repositories = f"ecr:\n  repositories: {{base: {project.name}-tlsbase-{nonce}}}\n"
    project.edit_config("app:\n", f"{repositories}app:\n")


@pytest.mark.slow
def test_chain_builds_and_pushes_through_the_tls_engine(
    project: Project, tls_engine: TlsEngine, tmp_path: Path
) -> None:
    """base (a new key, no step cached) and the app are built by the TLS engine and pushed from
    it: the engine has both images, the default daemon has neither, the registry has both under
    their keys. ruby comes from the registry (a compile takes a quarter of an hour). The
    engine's RUN steps reach Debian's archive through a proxy on its bridge
    (tests/fresh_proxy.py)."""
    _build_chain_through(project, tls_engine, TLS_BRIDGE, tmp_path / "docker-config")


def _build_chain_through(project: Project, engine: TlsEngine, bridge: str, config: Path) -> None:
    _new_base(project)
    _change_source(project)
    with proxied_docker_config(config, bridge):
        env = {**_remote_env(engine), "DOCKER_CONFIG": str(config)}
        result = project.run("app", "--push", "--json", extra_env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    layers = layers_by_name(json.loads(result.stdout))
    ruby = layers["ruby"]
    # Reused from the registry when the suite built it before (a cold suite reaches engine 26's
    # repositories here first, and then compiles it through the TLS engine): pushed either way.
    assert ruby["built"] is False or ruby["pushed"] is True
    registry, _, path = ruby["image"].partition("/")
    repo, _, tag = path.rpartition(":")
    assert registry_digest(registry, repo, tag) == ruby["digest"]
    assert [s["name"] for s in layers["base"]["steps"] if s["cached"]] == []
    for name in ("base", "app"):
        layer = layers[name]
        assert (layer["built"], layer["pushed"], layer["path"]) == (True, True, "buildkit")
        _assert_on_engine_and_registry_only(engine, layer)
    print(f"base built through the TLS engine {engine.host} in {layers['base']['seconds']} s")


def _assert_on_engine_and_registry_only(engine: TlsEngine, layer: Mapping[str, Any]) -> None:
    """The layer's image is in `engine` (asked over TLS) and the registry, not in the default
    daemon: nothing went to the local engine behind DOCKER_HOST's back."""
    ref = layer["image"]
    on_engine = _docker(engine.env(), "image", "inspect", "--format", "{{.Id}}", ref)
    assert on_engine.returncode == 0, on_engine.stderr
    assert on_engine.stdout.strip() == layer["id"]
    on_default = _docker({}, "image", "inspect", ref)
    assert on_default.returncode != 0, f"{ref} reached the default daemon"
    registry, _, path = ref.partition("/")
    repo, _, tag = path.rpartition(":")
    assert registry_digest(registry, repo, tag) == layer["digest"]


@pytest.mark.slow
def test_verify_smoke_check_through_the_tls_engine(
    project: Project, tls_engine: TlsEngine, tmp_path: Path
) -> None:
    """verify's network, containers, published port and logs go through the API: the smoke
    check passes on an engine reached over TCP with TLS (on this machine: 127.0.0.1)."""
    _change_source(project)
    out = tmp_path / "verify-out"
    result = project.run(
        "verify", "--smoke-only", "--out", str(out), extra_env=_remote_env(tls_engine)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "smoke check passed: GET / -> 200" in result.stderr
    assert (out / "app.log").is_file()
    leftovers = _docker(tls_engine.env(), "ps", "-aq", "--filter", "label=io.imgbuild.verify.run")
    assert leftovers.stdout.strip() == ""


@pytest.mark.slow
def test_chain_through_a_tls_engine26_with_the_containerd_store(
    project: Project, dev: DevEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same (base too) through Docker 26 with the containerd image store (an index with
    attestations is what it pushes), listening with TLS on 127.0.0.1."""
    root = tmp_path_factory.mktemp("tls-dockerd26")
    certs = make_certs(root / "certs")
    tls = TlsListener(port=_free_port(), certs=certs.server)
    (root / "daemon").mkdir()
    binaries = dev.home / "engine26" / "root"
    with start_fresh_engine26(root / "daemon", binaries, tls=tls, bridge=TLS26_BRIDGE) as daemon:
        engine = TlsEngine(host=tls.host, socket=daemon.host, client=certs.client, root=root)
        # Repositories of engine 26's own, as the `engines` tests keep them (conftest.project).
        project.edit_config("name: hello\n", "name: hello26\n")
        project.name = "hello26"
        _build_chain_through(project, engine, TLS26_BRIDGE, root / "docker-config")


@pytest.fixture(scope="module")
def foreign_certs(tls_engine: TlsEngine) -> dict[str, Path]:
    """DOCKER_CERT_PATHs the engine must refuse: everything from another CA, and the right CA
    with a client certificate from another CA."""
    other_ca = make_ca(tls_engine.root / "other" / "ca", "imgbuild-other-ca")
    other = client_certs(other_ca, tls_engine.root / "other" / "client")
    mixed = tls_engine.root / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes((tls_engine.client / "ca.pem").read_bytes())
    for name in ("cert.pem", "key.pem"):
        (mixed / name).write_bytes((other / name).read_bytes())
    return {"other-ca": other, "untrusted-client": mixed}


@pytest.mark.parametrize("which", ["other-ca", "untrusted-client"])
def test_bad_certificate_is_one_line_exit_5(
    project: Project, tls_engine: TlsEngine, foreign_certs: dict[str, Path], which: str
) -> None:
    _change_source(project)
    env = _remote_env(tls_engine, foreign_certs[which])
    result, seconds = _timed(project, env)
    assert result.returncode == 5, result.stderr[-2000:]
    line = _one_error_line(result.stderr)
    assert f"DOCKER_HOST={tls_engine.host}" in line
    assert "DOCKER_CERT_PATH" in line
    assert "failed TLS" in line
    assert seconds < ERROR_SECONDS


def test_unreachable_host_is_one_line_exit_5(project: Project, tls_engine: TlsEngine) -> None:
    _change_source(project)
    closed = f"tcp://127.0.0.1:{_free_port()}"
    result, seconds = _timed(project, {**_remote_env(tls_engine), "DOCKER_HOST": closed})
    assert result.returncode == 5, result.stderr[-2000:]
    line = _one_error_line(result.stderr)
    assert f"no Docker daemon answers at DOCKER_HOST={closed}" in line
    assert seconds < ERROR_SECONDS


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a host behind a dropping firewall,
    a wedged daemon. Only the client's own timeout ends a request to it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshakes; nothing ever reads or writes
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_silent_host_is_one_line_exit_5_within_10_s(
    project: Project, tls_engine: TlsEngine, silent_port: int
) -> None:
    _change_source(project)
    silent = f"tcp://127.0.0.1:{silent_port}"
    result, seconds = _timed(project, {**_remote_env(tls_engine), "DOCKER_HOST": silent})
    assert result.returncode == 5, result.stderr[-2000:]
    line = _one_error_line(result.stderr)
    assert f"no Docker daemon answers at DOCKER_HOST={silent} (timed out)" in line
    assert seconds < ERROR_SECONDS


def test_ssh_host_is_passed_to_the_sdk(project: Project) -> None:
    """ssh:// goes to the SDK as given (through the ssh command); with nothing listening (and,
    here, without paramiko, which the SDK needs for ssh://) it is one line and exit 5."""
    _change_source(project)
    host = f"ssh://imgbuild@127.0.0.1:{_free_port()}"
    env = {"DOCKER_HOST": host, "DOCKER_CONTEXT": "", "IMGBUILD_NATIVE": "off"}
    result, seconds = _timed(project, env)
    assert result.returncode == 5, result.stderr[-2000:]
    assert f"DOCKER_HOST={host}" in _one_error_line(result.stderr)
    assert seconds < ERROR_SECONDS


@pytest.mark.parametrize("where", ["config", "BUILDX_BUILDER"])
def test_named_builder_is_the_one_buildx_is_asked_for(project: Project, where: str) -> None:
    """A builder no one created: buildx itself says so, which imgbuild reports as a BuildKit
    setup error (exit 6) naming it; the default builder would have built."""
    name = f"imgbuild-missing-{uuid.uuid4().hex[:8]}"
    env = {"IMGBUILD_NATIVE": "off"}
    if where == "config":
        project.edit_config("base:\n", f"builder: {name}\nbase:\n")
        line_no = project.config.read_text().splitlines().index(f"builder: {name}") + 1
        origin = f"{project.config}:{line_no}"
    else:
        env["BUILDX_BUILDER"] = name
        origin = "BUILDX_BUILDER"
    _change_source(project)
    result = project.run("app", extra_env=env, timeout=300)
    assert result.returncode == 6, result.stderr[-2000:]
    line = _one_error_line(result.stderr)
    assert line.startswith(f"imgbuild: error: {origin}: no buildx builder '{name}'; create it")


@pytest.fixture
def docker_config(tmp_path: Path) -> Path:
    """A DOCKER_CONFIG of the test's own (builders and contexts it creates stay there) that
    still finds the buildx plugin."""
    config_dir = tmp_path / "dockercfg"
    (config_dir / "cli-plugins").mkdir(parents=True)
    homes = (
        Path.home() / ".docker",
        Path("/usr/local/libexec/docker"),
        Path("/usr/libexec/docker"),
    )
    for home in homes:
        plugin = home / "cli-plugins" / "docker-buildx"
        if plugin.is_file():
            (config_dir / "cli-plugins" / "docker-buildx").symlink_to(plugin)
            return config_dir
    pytest.fail("no docker-buildx plugin; run `make services`")


def test_builder_named_in_the_config_is_the_one_buildx_builds_with(
    project: Project, docker_config: Path
) -> None:
    """A `remote` driver builder whose buildkitd does not listen: BuildKit's progress says it
    builds with that builder, and its silence is one line, exit 6, naming it."""
    name = f"imgbuild-remote-{uuid.uuid4().hex[:8]}"
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    env = {"DOCKER_CONFIG": str(docker_config)}
    created = _docker(env, "buildx", "create", "--name", name, "--driver", "remote", endpoint)
    assert created.returncode == 0, created.stderr
    project.edit_config("base:\n", f"builder: {name}\nbase:\n")
    _change_source(project)
    result = project.run("app", extra_env={**env, "IMGBUILD_NATIVE": "off"}, timeout=300)
    assert f'building with "{name}" instance using remote driver' in result.stderr
    assert result.returncode == 6, result.stderr[-2000:]
    line = _one_error_line(result.stderr)
    assert f"the buildx builder '{name}' (remote driver) does not answer" in line


def test_builder_of_another_docker_context_is_one_line_exit_6(
    project: Project, tls_engine: TlsEngine, docker_config: Path
) -> None:
    """A docker context is a builder (docker driver) of the same name, which buildx uses only
    from that context: imgbuild says to select the context instead."""
    name = f"imgbuild-tls-{uuid.uuid4().hex[:8]}"
    certs = tls_engine.client
    endpoint = (
        f"host={tls_engine.host},ca={certs / 'ca.pem'},cert={certs / 'cert.pem'},"
        f"key={certs / 'key.pem'}"
    )
    env = {"DOCKER_CONFIG": str(docker_config)}
    created = _docker(env, "context", "create", name, "--docker", endpoint)
    assert created.returncode == 0, created.stderr
    _change_source(project)
    env = {
        **env,
        "BUILDX_BUILDER": name,
        "DOCKER_HOST": tls_engine.socket,
        "IMGBUILD_NATIVE": "off",
    }
    result = project.run("app", extra_env=env, timeout=300)
    assert result.returncode == 6, result.stderr[-2000:]
    assert f"set DOCKER_CONTEXT={name}" in _one_error_line(result.stderr)
