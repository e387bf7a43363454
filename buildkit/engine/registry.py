"""A small client for the registry HTTP API v2: does a tag exist, what is its manifest and config.

Plain HTTP for loopback registries (Docker treats 127.0.0.0/8 as insecure by default), HTTPS
otherwise. Basic and Bearer-token auth, with credentials from the docker config. Idempotent reads
are retried with backoff on connection errors and 5xx; a dead registry fails within seconds.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from buildkit import log
from buildkit.engine import credentials
from buildkit.errors import RegistryError

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


class _Transient(Exception):
    """A failure worth retrying: connection refused/reset, timeout, 5xx, 429."""


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: Mapping[str, Any]
    raw: bytes


def is_loopback(host: str) -> bool:
    bracketed = host.startswith("[")
    name = host.split("]", maxsplit=1)[0] + "]" if bracketed else host.rsplit(":", 1)[0]
    return name in ("localhost", "[::1]") or name.startswith("127.")


def _log_retry(state: Any) -> None:
    log.warn(f"registry request failed ({state.outcome.exception()}); retrying")


def split_ref(ref: str) -> tuple[str, str, str]:
    """'host:5000/a/b:tag' -> ('host:5000', 'a/b', 'tag'); a digest ref keeps '@sha256:…'."""
    host, _, rest = ref.partition("/")
    if "@" in rest:
        repo, _, digest = rest.partition("@")
        return host, repo, digest
    repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    return host, repo, tag


class RegistryClient:
    """Reads from one registry host."""

    def __init__(
        self, host: str, auth: credentials.Auth | None = None, timeout: float = 10.0
    ) -> None:
        self.host = host
        self.scheme = "http" if is_loopback(host) else "https"
        self.auth = auth if auth is not None else credentials.for_registry(host)
        self.timeout = timeout
        self._bearer: dict[str, str] = {}

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path}"

    def manifest(self, repo: str, reference: str) -> Manifest | None:
        """The manifest of repo:reference, or None when the registry has no such tag."""
        status, headers, body = self._request("GET", f"{repo}/manifests/{reference}", repo)
        if status == 404:
            return None
        self._raise_for(status, f"{repo}:{reference}")
        media_type = headers.get("Content-Type", "").split(";")[0]
        digest = headers.get("Docker-Content-Digest", "")
        return Manifest(digest=digest, media_type=media_type, body=json.loads(body), raw=body)

    def exists(self, repo: str, reference: str) -> str | None:
        """The manifest digest of repo:reference, or None (HEAD: cheap, no body)."""
        status, headers, _ = self._request("HEAD", f"{repo}/manifests/{reference}", repo)
        if status == 404:
            return None
        self._raise_for(status, f"{repo}:{reference}")
        return headers.get("Docker-Content-Digest") or "unknown"

    def blob(self, repo: str, digest: str) -> bytes:
        status, _, body = self._request("GET", f"{repo}/blobs/{digest}", repo)
        self._raise_for(status, f"{repo}@{digest}")
        return body

    def _raise_for(self, status: int, what: str) -> None:
        if status in (401, 403):
            raise RegistryError(
                f"registry {self.host} refused access to {what} (HTTP {status}); log in "
                f"(docker login {self.host}) or check the credentials"
            )
        if status >= 300:
            raise RegistryError(f"registry {self.host} answered HTTP {status} for {what}")

    def _request(self, method: str, path: str, repo: str) -> tuple[int, Mapping[str, str], bytes]:
        try:
            return self._request_with_retry(method, path, repo)
        except _Transient as exc:
            raise RegistryError(
                f"registry {self.host} is unreachable ({exc}); start it (make services) or fix "
                "--registry / IMGBUILD_REGISTRY"
            ) from None

    @retry(
        retry=retry_if_exception(lambda exc: isinstance(exc, _Transient)),
        stop=(stop_after_attempt(4) | stop_after_delay(8)),
        wait=wait_exponential(multiplier=0.2, max=2),
        before_sleep=_log_retry,
        reraise=True,
    )
    def _request_with_retry(
        self, method: str, path: str, repo: str
    ) -> tuple[int, Mapping[str, str], bytes]:
        status, headers, body = self._send(method, path, self._auth_header(repo))
        if status == 401 and "Www-Authenticate" in headers:
            header = self._authenticate(headers["Www-Authenticate"], repo)
            if header:
                status, headers, body = self._send(method, path, header)
        if status >= 500 or status == 429:
            raise _Transient(f"HTTP {status}")
        return status, headers, body

    def _send(
        self, method: str, path: str, auth_header: str | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(self.url(path), method=method)
        request.add_header("Accept", MANIFEST_TYPES)
        if auth_header:
            request.add_header("Authorization", auth_header)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(str(reason)) from None

    def _auth_header(self, repo: str) -> str | None:
        if repo in self._bearer:
            return f"Bearer {self._bearer[repo]}"
        if self.auth and self.scheme == "http":
            return self.auth.basic_header()
        return None

    def _authenticate(self, challenge: str, repo: str) -> str | None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            return self.auth.basic_header() if self.auth else None
        fields = dict(part.split("=", 1) for part in _split_params(params) if "=" in part)
        realm = fields.get("realm", "").strip('"')
        if not realm:
            return None
        query = {
            "service": fields.get("service", "").strip('"'),
            "scope": f"repository:{repo}:pull",
        }
        request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")
        if self.auth:
            request.add_header("Authorization", self.auth.basic_header())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None
        token = data.get("token") or data.get("access_token")
        if not token:
            return None
        self._bearer[repo] = token
        return f"Bearer {token}"


def _split_params(params: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in params:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
