"""Image references and registry hosts, read the way Docker reads them.

The grammar is distribution/reference's, the package Docker, BuildKit and containerd parse names
with (tests/engine/test_reference.py holds its own test table):

    reference := name [":" tag] ["@" digest]        name := [domain "/"] path

`parse` is its Parse: the domain is whatever the grammar lets the first component be. `normalize`
is its ParseNormalizedNamed, what `docker push` does: the first component is a host only if it
has a "." or a ":", is "localhost", or has uppercase letters; any other name is on Docker Hub
(`app` is docker.io/library/app, `team/app` is docker.io/team/app). Every caller that needs a
host, a repository or a tag out of an image name asks this module, never str.split.

Pure and cheap to import: config checks `registry:` and `base_image` with it, so it sits in the
base layer although it lives under engine/ (docs/architecture.md).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from buildkit.errors import InvalidReferenceError

NAME_MAX = 255
DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_HUB = "index.docker.io"
_OFFICIAL = "library/"

# Upstream's error texts, so that its test table can say which error a case expects.
ERR_FORMAT = "invalid reference format"
ERR_UPPERCASE = "repository name must be lowercase"
ERR_EMPTY = "repository name must have at least one component"
ERR_TOO_LONG = f"repository name must not be more than {NAME_MAX} characters"
ERR_DIGEST_LENGTH = "invalid checksum digest length"
ERR_DIGEST_FORMAT = "invalid checksum digest format"
ERR_DIGEST_UNSUPPORTED = "unsupported digest algorithm"
ERR_IDENTIFIER = "a 64-hex-digit name is an image ID, not a repository name"

# The grammar, piece by piece as upstream's regexp.go builds it. Go's \w is ASCII-only, so it is
# spelled out (Python's \w would let non-ASCII letters into tags).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(rf"((?:{_DOMAIN}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?")
_NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_PATH})")
_DOMAIN_RE = re.compile(_DOMAIN)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_HEX_RE = re.compile(r"[a-f0-9]+")
#: Hex digits of each digest algorithm Docker verifies (go-digest; Docker links all three).
_DIGEST_SIZES = {"sha256": 64, "sha384": 96, "sha512": 128}

_ECR_HOSTS = (
    # <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: the IPv4 endpoints
    re.compile(r"([0-9]{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"),
    # <account>.dkr-ecr[-fips].<region>.on.aws: the dual-stack (IPv4 and IPv6) endpoints
    re.compile(r"([0-9]{12})\.dkr-ecr(-fips)?\.([a-z0-9-]+)\.on\.aws"),
)


@dataclass(frozen=True)
class Reference:
    """A parsed reference; empty strings for what it does not have."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository with its domain: what `docker tag` and the SDK call a repository."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def tag_or_digest(self) -> str:
        """What the registry's /manifests/<reference> takes: the digest when there is one (it
        pins the content; Docker ignores the tag then), else the tag, else latest."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def parse(text: str) -> Reference:
    """distribution/reference's Parse: the grammar alone, no Docker Hub defaults."""
    if not text:
        raise InvalidReferenceError(text, ERR_EMPTY)
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        lower = text.lower()
        upper = lower != text and _REFERENCE_RE.fullmatch(lower) is not None
        raise InvalidReferenceError(text, ERR_UPPERCASE if upper else ERR_FORMAT)
    domain, path = _split_name(match[1])
    if len(path) > NAME_MAX:
        raise InvalidReferenceError(text, ERR_TOO_LONG)
    digest = match[3] or ""
    if digest:
        _check_digest(text, digest)
    return Reference(domain, path, match[2] or "", digest)


def parse_name(text: str) -> Reference:
    """A repository name alone (upstream's WithName): no tag, no digest."""
    match = _NAME_RE.fullmatch(text)
    if match is None:
        raise InvalidReferenceError(text, ERR_FORMAT)
    if len(match[2]) > NAME_MAX:
        raise InvalidReferenceError(text, ERR_TOO_LONG)
    return Reference(match[1] or "", match[2])


def normalize(text: str) -> Reference:
    """The reference as Docker reads it (upstream's ParseNormalizedNamed): always with a
    domain, docker.io/library/... for a familiar name."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReferenceError(text, ERR_IDENTIFIER)
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise InvalidReferenceError(text, ERR_UPPERCASE)
    try:
        return parse(f"{domain}/{remainder}")
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(text, exc.reason) from None


def docker_ref(text: str) -> Reference:
    """upstream's ParseDockerRef: normalized, `latest` when untagged, and a tag dropped when a
    digest is given (the digest is what Docker pulls)."""
    ref = normalize(text)
    if ref.digest:
        return replace(ref, tag="")
    return ref if ref.tag else replace(ref, tag=DEFAULT_TAG)


def familiar(ref: Reference) -> str:
    """The short form Docker shows: docker.io/library/debian:12 is debian:12."""
    if ref.domain != DOCKER_HUB:
        return str(ref)
    rest = ref.path.removeprefix(_OFFICIAL)
    short = rest if ref.path.startswith(_OFFICIAL) and "/" not in rest else ref.path
    return str(replace(ref, domain="", path=short))


def _split_name(name: str) -> tuple[str, str]:
    match = _NAME_RE.fullmatch(name)
    return (match[1] or "", match[2]) if match else ("", name)


def _check_digest(text: str, digest: str) -> None:
    algorithm, _, encoded = digest.partition(":")
    size = _DIGEST_SIZES.get(algorithm)
    if size is None:
        raise InvalidReferenceError(text, ERR_DIGEST_UNSUPPORTED)
    if len(encoded) != size:
        raise InvalidReferenceError(text, ERR_DIGEST_LENGTH)
    if not _HEX_RE.fullmatch(encoded):
        raise InvalidReferenceError(text, ERR_DIGEST_FORMAT)


def reads_as_host(component: str) -> bool:
    """Whether Docker takes this first component of a name as a registry host."""
    return (
        component in ("localhost", _LEGACY_HUB)
        or "." in component
        or ":" in component
        or component.lower() != component
    )


def _split_docker_domain(text: str) -> tuple[str, str]:
    first, slash, rest = text.partition("/")
    if not slash:  # a familiar name ("debian", "debian:12"); never a host:port
        return DOCKER_HUB, _OFFICIAL + text
    if not reads_as_host(first):
        domain, rest = DOCKER_HUB, text
    else:
        domain = DOCKER_HUB if first == _LEGACY_HUB else first
    if domain == DOCKER_HUB and "/" not in rest:
        rest = _OFFICIAL + rest
    return domain, rest


# -- registry hosts


def host_and_port(domain: str) -> tuple[str, str]:
    """('::1', '5000') for '[::1]:5000', ('127.0.0.1', '') for '127.0.0.1': the host without
    IPv6 brackets, and the port ('' for none). A bare IPv6 address ('::1') has no port."""
    if domain.startswith("["):
        host, _, rest = domain[1:].partition("]")
        return host, rest.removeprefix(":")
    if domain.count(":") > 1:
        return domain, ""
    host, _, port = domain.partition(":")
    return host, port


def is_loopback(domain: str) -> bool:
    """Whether a registry's domain is this machine: `localhost`, or an IP literal in
    127.0.0.0/8 or ::1, with or without a port. Only these get plain HTTP, as Docker allows
    them without `insecure-registries`; a name that merely starts with 127. does not."""
    bare_ipv6 = domain.count(":") > 1 and not domain.startswith("[")
    if not bare_ipv6 and not _DOMAIN_RE.fullmatch(domain):
        return False
    host = host_and_port(domain)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a DNS name: whatever it resolves to, it is not ours to trust
        return False


@dataclass(frozen=True)
class EcrHost:
    """An Amazon ECR registry host, and which of its endpoints it is."""

    account: str
    region: str
    fips: bool
    dualstack: bool


def parse_ecr_host(host: str) -> EcrHost | None:
    """The ECR registry a host names, for each of ECR's Docker endpoints (AWS General
    Reference, "Amazon ECR endpoints"), or None for any other host."""
    for dualstack, pattern in enumerate(_ECR_HOSTS):
        match = pattern.fullmatch(host)
        if match:
            return EcrHost(match[1], match[3], fips=bool(match[2]), dualstack=bool(dualstack))
    return None


def is_ecr(host: str) -> bool:
    return parse_ecr_host(host) is not None


def ecr_host(account: str, region: str) -> str:
    """ECR's IPv4 registry host of an account and region (China's regions end in .cn)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def split_registry(registry: str) -> tuple[str, str]:
    """(host, path prefix) of a registry written HOST[:PORT][/PATH], as Docker reads the image
    names `<registry>/<name>`: ('127.0.0.1:5000', 'team') for 127.0.0.1:5000/team. Raises when
    Docker would read it otherwise, with what Docker would do and what to write instead."""
    if "://" in registry:
        raise InvalidReferenceError(
            registry, "is a URL; write the registry as HOST[:PORT][/PATH], without the scheme"
        )
    first = registry.partition("/")[0]
    if not reads_as_host(first):
        raise InvalidReferenceError(
            registry,
            f"is no registry host to Docker: a first part without '.', ':' or 'localhost' names "
            f"a Docker Hub namespace, so Docker would push to docker.io/{registry}/<image> while "
            f"imgbuild would ask https://{first}; write the host with its port or domain (e.g. "
            f"{first}:5000 or {first}.example.com), or docker.io/{registry} for Docker Hub",
        )
    try:
        probe = normalize(f"{registry}/x")  # x: any image name under the registry
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(registry, f"is not HOST[:PORT][/PATH] ({exc.reason})") from None
    _check_port(registry, probe.domain)
    return probe.domain, probe.path.removesuffix("x").rstrip("/")


def join_registry(host: str, prefix: str) -> str:
    """The registry as image names start with it: split_registry's inverse."""
    return f"{host}/{prefix}" if prefix else host


def check_host(host: str) -> str:
    """host, when a client can connect to it: HOST[:PORT] alone. A registry's path prefix
    belongs in image names (split_registry takes it off), never in a URL's authority, where
    it reads as a port ('5000/team') and fails on every request as if the network did."""
    if not _DOMAIN_RE.fullmatch(host):
        raise InvalidReferenceError(
            host, "is not a registry host: write HOST[:PORT], without a scheme or a path"
        )
    _check_port(host, host)
    return host


def _check_port(text: str, domain: str) -> None:
    port = host_and_port(domain)[1]
    if port and not 0 < int(port) < 65536:
        raise InvalidReferenceError(text, f"has port {port}; a port is 1-65535")
