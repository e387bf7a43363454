"""A small client for the registry HTTP API v2: does a tag exist, what is its manifest and config.

Plain HTTP for loopback registries (Docker treats 127.0.0.0/8 as insecure by default), HTTPS
otherwise. Basic and Bearer-token auth, with credentials from the docker config. Idempotent reads
are retried with backoff on connection errors and 5xx; a dead registry fails within seconds.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from buildkit import log
from buildkit.engine import credentials, keepalive, reference
from buildkit.errors import InvalidReferenceError, RegistryError

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


#: A request body: (content type, bytes or an open binary file streamed from disk).
Body = tuple[str, bytes | IO[bytes]] | None


def _is_stream(body: Body) -> bool:
    return body is not None and not isinstance(body[1], bytes)


class _StripAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    """ECR answers blob GETs with a redirect to a presigned S3 URL, which rejects a second
    credential: drop Authorization when a redirect leaves the registry's host."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != req.host:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_StripAuthOnRedirect())


_UPLOAD_ATTEMPTS = 3  # sessions per blob upload (each PUT has its own transient retries)


class _Transient(Exception):
    """A failure worth retrying: connection refused/reset, timeout, 5xx, 429."""


# What urllib and http.client raise for a URL they cannot even send (InvalidURL is an
# HTTPException, which a dropped connection raises too: it must be told apart first).
_UNUSABLE_URL = (http.client.InvalidURL, ValueError)


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: Mapping[str, Any]
    raw: bytes


def _log_retry(state: Any) -> None:
    _log_failure(state.outcome.exception())


def _log_failure(exc: BaseException | None) -> None:
    log.warn(f"registry request failed ({exc}); retrying")


@functools.cache
def _retrying() -> Any:
    """Attempts 2 to 4 of a request (the first one runs without tenacity), within 8 s in all."""
    import tenacity

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, _Transient)),
        stop=(tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(8)),
        wait=tenacity.wait_exponential(multiplier=0.2, max=2),
        before_sleep=_log_retry,
        reraise=True,
    )


def split_ref(ref: str) -> tuple[str, str, str]:
    """(host, repository, tag or digest) as Docker reads ref: 'host:5000/a/b:tag' ->
    ('host:5000', 'a/b', 'tag'); the digest when there is one, 'latest' when neither."""
    parsed = reference.normalize(ref)
    return parsed.domain, parsed.path, parsed.tag_or_digest


class RegistryClient:
    """Reads from one registry host."""

    def __init__(
        self,
        host: str,
        auth: credentials.Auth | None = None,
        timeout: float = 10.0,
        refresh: Callable[[], credentials.Auth] | None = None,
    ) -> None:
        self.host = reference.check_host(host)  # a bad one: exit 3 now, not "unreachable" later
        self.scheme = "http" if reference.is_loopback(host) else "https"
        self.auth = auth if auth is not None else credentials.for_registry(host)
        self.timeout = timeout
        self.refresh = refresh  # new credentials after a 401 (an expired ECR token)
        self._bearer: dict[str, str] = {}
        # Manifests and blobs this run wrote or was handed, by (repository, digest): content
        # addressed, so reading one back would return these bytes (a one-shot run's report and
        # tag moves read what it just pushed: issue 17, P2-ONESHOT).
        self._known: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._blobs_in: set[tuple[str, str]] = set()  # (repository, digest) seen or stored there
        usable = keepalive.KeepAlive.usable(self.scheme, host)
        self._conn = keepalive.KeepAlive(self.scheme, host, timeout) if usable else None

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path}"

    def remember(self, repo: str, digest: str, media_type: str, raw: bytes) -> None:
        """Content this run has in hand under `digest` in `repo`: `manifest` and `blob` answer
        with it instead of asking the registry."""
        self._known[(repo, digest)] = (media_type, raw)

    def manifest(self, repo: str, reference: str) -> Manifest | None:
        """The manifest of repo:reference, or None when the registry has no such tag."""
        known = self._known.get((repo, reference))
        if known is not None:
            return Manifest(reference, known[0], json.loads(known[1]), known[1])
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

    def put_manifest(self, repo: str, tag: str, manifest: Manifest) -> str:
        """Point repo:tag at manifest (same bytes, so the same digest); return the digest."""
        status, headers, _ = self._request(
            "PUT", f"{repo}/manifests/{tag}", repo, (manifest.media_type, manifest.raw)
        )
        self._raise_for(status, f"{repo}:{tag}")
        digest = headers.get("Docker-Content-Digest") or manifest.digest
        if digest == manifest.digest and digest.startswith("sha256:"):
            self.remember(repo, digest, manifest.media_type, manifest.raw)
        return digest

    def has_blob(self, repo: str, digest: str) -> bool:
        """Asked of the registry once: a blob this client found, uploaded or mounted in repo is
        there for the rest of the run (content addressed)."""
        if (repo, digest) in self._blobs_in:
            return True
        status, _, _ = self._request("HEAD", f"{repo}/blobs/{digest}", repo)
        if status == 404:
            return False
        self._raise_for(status, f"{repo}@{digest}")
        self._blobs_in.add((repo, digest))
        return True

    def upload_blob(self, repo: str, digest: str, payload: bytes | IO[bytes]) -> None:
        """Monolithic upload: POST a session, PUT the bytes with their digest. A PUT that fails
        (a registry error, a dropped connection) may have spent its session, so a retry opens
        a new one rather than PUT again to a location the registry may have dropped."""
        for attempt in range(_UPLOAD_ATTEMPTS):
            status = self._put_blob(repo, digest, payload, self._open_session(repo))
            if status < 300:
                self._blobs_in.add((repo, digest))
                return
            if status in (401, 403) or attempt == _UPLOAD_ATTEMPTS - 1:
                self._raise_for(status, f"{repo}@{digest}")
            log.warn(f"upload of {repo}@{digest[:19]} got HTTP {status}; retrying in a new session")

    def mount_blob(self, repo: str, digest: str, source_repo: str) -> bool:
        """Ask the registry to link digest from source_repo into repo without a transfer.
        True when it did (201); False when it answered with an ordinary upload session (202:
        mounting is off, as on ECR without BLOB_MOUNTING, or the blob is not readable there),
        and the caller must upload the bytes."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repo})
        status, _, _ = self._request("POST", f"{repo}/blobs/uploads/?{query}", repo)
        if status == 201:
            self._blobs_in.add((repo, digest))
            return True
        self._raise_for(status, f"mount of {source_repo}@{digest[:19]} into {repo}")
        return False  # the 202 session is left to expire: the upload opens its own

    def _open_session(self, repo: str) -> str:
        status, headers, _ = self._request("POST", f"{repo}/blobs/uploads/", repo)
        self._raise_for(status, f"upload to {repo}")
        location = headers.get("Location", "")
        if location.startswith("/"):
            location = f"{self.scheme}://{self.host}{location}"
        return location

    def _put_blob(self, repo: str, digest: str, payload: bytes | IO[bytes], location: str) -> int:
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}{urllib.parse.urlencode({'digest': digest})}"
        status, _, _ = self._request("PUT", url, repo, ("application/octet-stream", payload))
        return status

    def download_blob(self, repo: str, digest: str, out: IO[bytes]) -> None:
        """Stream a blob into out (large layers never sit in memory)."""
        self.has_blob(repo, digest)  # settles the auth scheme (Basic or a Bearer token) first
        header = self._auth_header(repo)
        request = urllib.request.Request(self.url(f"{repo}/blobs/{digest}"))
        if header:
            request.add_header("Authorization", header)
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(
                f"registry {self.host}: cannot read {repo}@{digest}: {exc}"
            ) from None

    def blob(self, repo: str, digest: str) -> bytes:
        known = self._known.get((repo, digest))
        if known is not None:
            return known[1]
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

    def _request(
        self, method: str, path: str, repo: str, body: Body = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            status, headers, data = self._request_with_retry(method, path, repo, body)
            if status == 401 and self.refresh is not None and not _is_stream(body):
                log.info(f"registry {self.host} answered 401; renewing credentials")
                self.auth = self.refresh()
                self._bearer.clear()
                status, headers, data = self._request_with_retry(method, path, repo, body)
            return status, headers, data
        except _Transient as exc:
            raise RegistryError(
                f"registry {self.host} is unreachable ({exc}); start it (make services) or fix "
                "--registry / IMGBUILD_REGISTRY"
            ) from None

    def _request_with_retry(
        self, method: str, path: str, repo: str, body: Body = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            return self._attempt(method, path, repo, body)
        except _Transient as exc:
            _log_failure(exc)
            time.sleep(0.2)  # backoff before attempt 2; tenacity spaces the later ones
        # Only a failed first attempt loads tenacity (and the asyncio it imports: ~40 ms on the
        # hot path of every no-op run otherwise).
        result: tuple[int, Mapping[str, str], bytes] = _retrying().copy()(
            self._attempt, method, path, repo, body
        )
        return result

    def _attempt(
        self, method: str, path: str, repo: str, body: Body = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        status, headers, data = self._send(method, path, self._auth_header(repo), body)
        if status == 401 and "Www-Authenticate" in headers:
            header = self._authenticate(headers["Www-Authenticate"], repo, method)
            if header:
                status, headers, data = self._send(method, path, header, body)
        if status >= 500 or status == 429:
            raise _Transient(f"HTTP {status}")
        return status, headers, data

    def _send(
        self, method: str, path: str, auth_header: str | None, body: Body = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        headers = {"Accept": MANIFEST_TYPES}
        payload: bytes | IO[bytes] | None = None
        if body is not None:
            headers["Content-Type"], payload = body
            if not isinstance(payload, bytes):
                size = payload.seek(0, os.SEEK_END)  # flushes a buffered writer, unlike fstat
                payload.seek(0)
                headers["Content-Length"] = str(size)
        if auth_header:
            headers["Authorization"] = auth_header
        origin = f"{self.scheme}://{self.host}"
        if self._conn is not None and url.startswith(origin + "/"):
            try:
                answer = self._conn.request(method, url[len(origin) :], headers, payload)
            except _UNUSABLE_URL as exc:
                raise self._bad_url(url, exc) from None
            except (http.client.HTTPException, OSError) as exc:
                raise _Transient(str(exc) or type(exc).__name__) from None
            if answer[0] not in keepalive.REDIRECTS or method not in ("GET", "HEAD"):
                return answer
            # A redirect (ECR to S3): urllib follows it and drops the credential on the way.
        request = urllib.request.Request(url, method=method, headers=headers)
        if payload is not None:
            if not isinstance(payload, bytes):
                payload.seek(0)
            request.data = payload
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except _UNUSABLE_URL as exc:
            raise self._bad_url(url, exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(str(reason)) from None

    def _bad_url(self, url: str, exc: Exception) -> InvalidReferenceError:
        """A URL no retry can mend (a bad port, a scheme urllib does not know; a registry's
        Location header can carry one too): the one-line config error, never "unreachable"."""
        return InvalidReferenceError(url, f"is no URL of registry {self.host} ({exc})")

    def _auth_header(self, repo: str) -> str | None:
        if repo in self._bearer:
            return f"Bearer {self._bearer[repo]}"
        if self.auth:
            return self.auth.basic_header()
        return None

    def _authenticate(self, challenge: str, repo: str, method: str = "GET") -> str | None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            return self.auth.basic_header() if self.auth else None
        fields = dict(part.split("=", 1) for part in _split_params(params) if "=" in part)
        realm = fields.get("realm", "").strip('"')
        if not realm:
            return None
        actions = "pull" if method in ("GET", "HEAD") else "pull,push"
        query = {
            "service": fields.get("service", "").strip('"'),
            "scope": f"repository:{repo}:{actions}",
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
