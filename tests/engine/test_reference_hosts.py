"""engine/reference.py's own answers about registry hosts (loopback, ECR's endpoints, a registry's
host and path prefix) and split_ref, the registry client's reading of an image reference.
Upstream's reference table is in test_reference.py."""

from __future__ import annotations

import time

import pytest

from buildkit.engine import ecr, reference
from buildkit.engine.reference import EcrHost
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.errors import InvalidReferenceError

SHA = "sha256:" + "0123456789abcdef" * 4

LOOPBACK = [
    ("127.0.0.1", True),
    ("127.0.0.1:5000", True),
    ("127.1.2.3:80", True),
    ("localhost", True),
    ("localhost:5000", True),
    ("LOCALHOST:5000", True),
    ("[::1]", True),
    ("[::1]:5000", True),
    ("::1", True),
    # A DNS name that starts with 127. resolves wherever its owner says: never plain HTTP.
    ("127.example.com", False),
    ("127.example.com:5000", False),
    ("127.0.0.1.nip.io", False),
    ("localhost.example.com", False),
    ("127.1", False),
    ("10.0.0.1:5000", False),
    ("[fc00::1]:5000", False),
    ("registry.example.com", False),
    ("", False),
]


@pytest.mark.parametrize(("host", "loopback"), LOOPBACK)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert reference.is_loopback(host) is loopback


def test_the_registry_client_talks_https_to_a_name_that_starts_with_127() -> None:
    assert RegistryClient("127.example.com:5000").url("x") == "https://127.example.com:5000/v2/x"
    assert RegistryClient("[::1]:5000").url("x") == "http://[::1]:5000/v2/x"


ACCT = "123456789012"
ECR = [
    (f"{ACCT}.dkr.ecr.eu-west-1.amazonaws.com", EcrHost(ACCT, "eu-west-1", False, False)),
    (f"{ACCT}.dkr.ecr.cn-north-1.amazonaws.com.cn", EcrHost(ACCT, "cn-north-1", False, False)),
    (f"{ACCT}.dkr.ecr-fips.us-east-1.amazonaws.com", EcrHost(ACCT, "us-east-1", True, False)),
    (
        f"{ACCT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
        EcrHost(ACCT, "us-gov-west-1", True, False),
    ),
    (f"{ACCT}.dkr-ecr.us-east-2.on.aws", EcrHost(ACCT, "us-east-2", False, True)),
    (f"{ACCT}.dkr-ecr-fips.us-east-2.on.aws", EcrHost(ACCT, "us-east-2", True, True)),
    (f"{ACCT}.dkr.ecr.eu-west-1.amazonaws.com:443", None),
    ("12345678901.dkr.ecr.eu-west-1.amazonaws.com", None),
    (f"{ACCT}.dkr.ecr.eu-west-1.amazonaws.com.evil.example", None),
    (f"{ACCT}.dkr-ecr.us-east-2.api.aws", None),  # the API's dual-stack host, not Docker's
    ("public.ecr.aws", None),
    ("registry.example.com", None),
]  # fmt: skip


@pytest.mark.parametrize(("host", "expected"), ECR)
def test_parse_ecr_host(host: str, expected: EcrHost | None) -> None:
    assert reference.parse_ecr_host(host) == expected
    assert reference.is_ecr(host) is (expected is not None)


@pytest.mark.parametrize(("host", "expected"), ECR)
def test_the_engine_logs_in_to_every_ecr_endpoint(host: str, expected: EcrHost | None) -> None:
    registry = ecr.resolve(host)
    if expected is None:
        assert registry is None
    else:
        assert registry is not None
        assert (registry.account, registry.region, registry.host) == (
            expected.account,
            expected.region,
            host,
        )


def test_ecr_host_of_an_account_and_region() -> None:
    assert reference.ecr_host("123456789012", "eu-west-1") == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    )
    assert reference.ecr_host("123456789012", "cn-northwest-1") == (
        "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"
    )


ECR_EU = f"{ACCT}.dkr.ecr.eu-west-1.amazonaws.com"
SPLIT_REGISTRY = [
    ("127.0.0.1:5000", ("127.0.0.1:5000", "")),
    ("127.0.0.1:5000/team", ("127.0.0.1:5000", "team")),
    ("localhost", ("localhost", "")),
    ("[fc00::1]:5000/a/b", ("[fc00::1]:5000", "a/b")),
    ("registry.example.com/group/project", ("registry.example.com", "group/project")),
    ("ghcr.io/org", ("ghcr.io", "org")),
    (f"{ECR_EU}/ns", (ECR_EU, "ns")),
    ("index.docker.io/acme", ("docker.io", "acme")),
    ("docker.io", ("docker.io", "library")),  # docker.io/<name> is docker.io/library/<name>
]  # fmt: skip


@pytest.mark.parametrize(("registry", "expected"), SPLIT_REGISTRY)
def test_split_registry(registry: str, expected: tuple[str, str]) -> None:
    assert reference.split_registry(registry) == expected


@pytest.mark.parametrize(
    ("registry", "reason"),
    [
        ("registry", "is no registry host to Docker"),
        ("myreg/team", "docker.io/myreg/team/<image>"),
        ("https://registry.example.com", "is a URL"),
        ("registry.example.com:0", "has port 0"),
        ("registry.example.com:65536", "has port 65536"),
        ("registry.example.com/team:tag", "is not HOST[:PORT][/PATH] (invalid reference format)"),
        ("r.example.com/Team", "is not HOST[:PORT][/PATH] (repository name must be lowercase)"),
    ],
)
def test_split_registry_refuses(registry: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        reference.split_registry(registry)
    assert reason in info.value.reason


SPLIT_REF = [
    ("127.0.0.1:5000/shop-base:abc", ("127.0.0.1:5000", "shop-base", "abc")),
    ("localhost:5000/foo", ("localhost:5000", "foo", "latest")),  # not split at the port
    (f"host:5000/repo:tag@{SHA}", ("host:5000", "repo", SHA)),  # the repository is not repo:tag
    (f"host:5000/repo@{SHA}", ("host:5000", "repo", SHA)),
    ("[::1]:5000/team/app:v1", ("[::1]:5000", "team/app", "v1")),
    ("127.0.0.1:5000/team/app", ("127.0.0.1:5000", "team/app", "latest")),
    ("debian:12", ("docker.io", "library/debian", "12")),
]


@pytest.mark.parametrize(("ref", "expected"), SPLIT_REF)
def test_split_ref(ref: str, expected: tuple[str, str, str]) -> None:
    assert split_ref(ref) == expected


def test_tags_are_ascii_as_in_go() -> None:
    with pytest.raises(InvalidReferenceError):
        reference.parse("debian:bookwörm")


@pytest.mark.parametrize(
    "text",
    ["a" * 5000 + "!", "a-" * 3000 + "!", "a." * 3000 + "/x!", "a/" * 3000 + ":", "[" + ":" * 5000],
    ids=["word", "dashes", "dots", "slashes", "brackets"],
)
def test_long_garbage_is_refused_quickly(text: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidReferenceError):
        reference.normalize(text)
    assert time.monotonic() - started < 1
