"""The Docker SDK for what it does well: inspect, tag, push, pull. (It cannot run BuildKit builds.)

The SDK reports push/pull errors inside the response stream, not as exceptions, so every stream is
scanned for `error`. Pushes and pulls are idempotent and retried on transient failures.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit import log
from buildkit.engine import reference
from buildkit.errors import DaemonUnavailableError, PushFailedError, RegistryError

_TRANSIENT_WORDS = (
    "500",
    "502",
    "503",
    "504",
    "429",
    "timeout",
    "connection reset",
    "EOF",
    "connection refused",
    "broken pipe",
    "i/o timeout",
    "TOOMANYREQUESTS",
    "unexpected status",
)


@dataclass(frozen=True)
class LocalImage:
    id: str
    labels: Mapping[str, str]
    size: int
    repo_digests: tuple[str, ...]


class _StreamError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.transient = any(word.lower() in message.lower() for word in _TRANSIENT_WORDS)


#: The API version the first request is made with: `/version`, which answers on every engine
#: the SDK supports; the client then speaks the version the engine reports, as `auto` does.
_FIRST_API_VERSION = "1.39"
_CONNECT_SECONDS = 5


@functools.cache
def client() -> Any:
    """A connected SDK client for the engine DOCKER_HOST (or the docker context) names: a local
    socket, tcp:// with TLS (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or ssh://. An engine that does
    not answer within 5 s, or refuses TLS, is a one-line error."""
    import docker
    import docker.errors
    import requests

    try:
        probe = _connect(_FIRST_API_VERSION)
        version = probe.api.version(api_version=False)["ApiVersion"]
        probe.close()
        api = _connect(version)
        api.api.timeout = 300
    except (requests.exceptions.SSLError, docker.errors.TLSParameterError) as exc:
        raise DaemonUnavailableError(_tls_message(exc)) from None
    except (docker.errors.DockerException, OSError, KeyError) as exc:
        if "paramiko" in str(exc):
            raise DaemonUnavailableError(
                f"{_daemon_host()} needs the paramiko package, which the Docker SDK reaches ssh:// "
                "engines with (pip install 'docker[ssh]' into imgbuild's environment); or reach "
                "the engine over tcp:// with TLS"
            ) from None
        if "HTTP request to an HTTPS server" in str(exc):
            raise DaemonUnavailableError(
                f"the Docker daemon at {_daemon_host()} requires TLS; set DOCKER_TLS_VERIFY=1 "
                "and DOCKER_CERT_PATH to a directory with its ca.pem, cert.pem and key.pem"
            ) from None
        raise DaemonUnavailableError(
            f"no Docker daemon answers at {_daemon_host()} ({_reason(exc)}); start it (make "
            "services starts dockerd) or set DOCKER_HOST"
        ) from None
    return api


def _connect(version: str) -> Any:
    import docker

    # ssh:// through the ssh command, as the docker CLI does (~/.ssh/config and the agent
    # apply); the SDK still needs paramiko installed for ssh:// at all.
    api = docker.from_env(timeout=_CONNECT_SECONDS, version=version, use_ssh_client=True)
    if isinstance(api.api.verify, str):
        # The CA is DOCKER_CERT_PATH's ca.pem: requests would otherwise verify the engine
        # against REQUESTS_CA_BUNDLE when that is set (a request's verify=None takes it over
        # the session's), and fail on a private CA the docker CLI accepts.
        api.api.trust_env = False
    return api


def _daemon_host() -> str:
    """What the SDK connects to, for messages: DOCKER_HOST, else the current docker context."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return f"DOCKER_HOST={host}"
    context = os.environ.get("DOCKER_CONTEXT")
    return f"docker context {context}" if context else "the default socket (DOCKER_HOST unset)"


def remote_engine() -> str | None:
    """Where the engine is ("DOCKER_HOST=tcp://…") when that is another machine, else None: a
    port the engine publishes is then on that machine's loopback, out of this one's reach."""
    url = os.environ.get("DOCKER_HOST") or _context_host()
    parsed = urllib.parse.urlsplit(url or "")
    if parsed.scheme in ("", "unix", "npipe", "fd"):
        return None
    host = parsed.hostname or "localhost"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else (_daemon_host() if os.environ.get("DOCKER_HOST") else url)


def _context_host() -> str | None:
    """The current docker context's endpoint (DOCKER_CONTEXT, then config.json), if any."""
    from docker.context import ContextAPI

    try:
        base_url = ContextAPI.kwargs_from_context().get("base_url")
    except Exception:  # an unreadable context store: the SDK's own connect reports it
        return None
    return str(base_url) if base_url else None


def _tls_message(exc: BaseException) -> str:
    import docker.errors

    cert_path = os.environ.get("DOCKER_CERT_PATH") or "~/.docker"
    if isinstance(exc, docker.errors.TLSParameterError):
        files = ("ca.pem", "cert.pem", "key.pem")
        missing = [f for f in files if not (Path(cert_path).expanduser() / f).is_file()]
        reason = f"no {', '.join(missing or files)} in DOCKER_CERT_PATH ({cert_path})"
    else:
        reason = _reason(exc)
    return (
        f"the Docker daemon at {_daemon_host()} failed TLS ({reason}); check DOCKER_CERT_PATH "
        f"({cert_path}): ca.pem must be the CA that signed the daemon's certificate, cert.pem "
        "and key.pem a client certificate the daemon trusts"
    )


_INNER_REASONS = (
    re.compile(r"\[SSL: [A-Z0-9_]+\][^'\")]*"),  # CERTIFICATE_VERIFY_FAILED, …
    re.compile(r"SSL\w*Error\(\d+, '([^']*)'"),  # EOF: the daemon refused our certificate
    re.compile(r"\[Errno -?\d+\][^'\")]*"),  # refused, no route, name unknown
    re.compile(r"timed out"),
)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error (they nest each cause's repr in their
    message), e.g. "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: …"."""
    text = str(exc)
    for pattern in _INNER_REASONS:
        found = pattern.findall(text)
        if found:
            return re.sub(r"\s*\(_ssl\.c:\d+$", "", found[-1].strip())[:160]
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def server_version() -> Mapping[str, Any]:
    version: Mapping[str, Any] = client().version()
    return version


def local_image(ref: str) -> LocalImage | None:
    """The image ref in the daemon's store, or None."""
    import docker.errors

    try:
        attrs = client().api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            return None
        raise
    config = attrs.get("Config") or {}
    return LocalImage(
        id=attrs["Id"],
        labels=config.get("Labels") or {},
        size=int(attrs.get("Size") or 0),
        repo_digests=tuple(attrs.get("RepoDigests") or ()),
    )


def _name_and_tag(ref: str) -> tuple[str, str]:
    """("localhost:5000/app", "latest") for localhost:5000/app: the repository and tag `docker
    tag` and `docker push` take, never split at a port's ':'."""
    parsed = reference.parse(ref)
    return parsed.name, parsed.tag or reference.DEFAULT_TAG


def tag(source: str, target: str) -> None:
    client().api.tag(source, *_name_and_tag(target))


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _StreamError) and exc.transient


def _before_sleep(state: Any) -> None:
    log.warn(f"{state.outcome.exception()}; retrying (attempt {state.attempt_number + 1})")


def _scan(stream: Iterable[Mapping[str, Any]], what: str) -> str | None:
    """Consume an SDK push/pull stream; return the digest it reports, raise on an error entry."""
    digest = None
    for item in stream:
        if "error" in item:
            raise _StreamError(f"{what}: {item['error']}")
        aux = item.get("aux") or {}
        digest = aux.get("Digest") or digest
        status = str(item.get("status", ""))
        if status.startswith("Digest: "):
            digest = status.split()[1]
        elif ": digest: sha256:" in status and digest is None:
            # The containerd image store (Docker 26) reports "<tag>: digest: sha256:… size: N"
            # and no aux entry when the registry already had every layer.
            digest = status.split(": digest: ", 1)[1].split(maxsplit=1)[0]
    return digest


def _retrying(attempts: int) -> Any:
    """Retries of transient push/pull errors; tenacity (which imports asyncio) loads only here,
    not on the import path of every run."""
    import tenacity

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.5, max=8),
        before_sleep=_before_sleep,
        reraise=True,
    )


def _push_once(ref: str, auth: Mapping[str, str] | None) -> str:
    repository, tag_name = _name_and_tag(ref)
    stream = client().api.push(repository, tag=tag_name, stream=True, decode=True, auth_config=auth)
    digest = _scan(stream, f"push {ref}")
    if not digest:
        raise _StreamError(f"push {ref}: the daemon reported no digest")
    return digest


def push(ref: str, auth: Mapping[str, str] | None = None) -> str:
    """Push ref (retried on transient errors); return the manifest digest."""
    try:
        digest: str = _retrying(5)(_push_once, ref, auth)
        return digest
    except _StreamError as exc:
        hint = "check the registry and its credentials" if not exc.transient else "retry later"
        raise PushFailedError(f"{exc}; {hint}") from None


def _repository_and_tag(ref: str) -> tuple[str, str]:
    """("host:5000/app", "v1") for host:5000/app:v1, as `docker pull` reads it: "latest" when
    untagged, the digest when there is one (the engine takes a digest in the tag field too)."""
    parsed = reference.parse(ref)
    return parsed.name, parsed.tag_or_digest


def _pull_once(ref: str, auth: Mapping[str, str] | None) -> None:
    repository, tag_name = _repository_and_tag(ref)
    _scan(
        client().api.pull(repository, tag=tag_name, stream=True, decode=True, auth_config=auth),
        f"pull {ref}",
    )


def pull(ref: str, auth: Mapping[str, str] | None = None) -> None:
    import docker.errors

    try:
        _retrying(4)(_pull_once, ref, auth)
    except _StreamError as exc:
        raise RegistryError(f"{exc}; check the registry and its credentials") from None
    except docker.errors.APIError as exc:  # the daemon refused at once: unknown image, no access
        raise RegistryError(
            f"pull {ref}: {exc.explanation or _short(exc)}; check the name, the registry and "
            "its credentials"
        ) from None


def untag(ref: str) -> None:
    """Remove one tag; the image goes only when nothing else names or uses it."""
    import docker.errors

    try:
        client().api.remove_image(ref, noprune=True)
    except docker.errors.APIError as exc:  # in use by a container, already gone: keep going
        log.warn(f"could not untag {ref}: {_short(exc)}")
