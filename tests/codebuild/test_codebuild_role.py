"""The generated CodeBuild role gets ECR rights for every ECR endpoint Docker can push to (IPv4,
FIPS, dual-stack, China), read by the one ECR host parser (engine/reference.py), and none for
another registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from buildkit.codebuild import project
from buildkit.config import loading as configmod
from tests.config.test_codebuild_config import FULL_SECTION, SHOP, write_config

ACCOUNT = project.Account("999999999999", "eu-central-1")
REPOS = ("shop-ruby", "shop-base", "shop-app")


def statements(tmp_path: Path, registry: str) -> dict[str, dict[str, Any]]:
    base = SHOP.replace("123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/team", registry)
    config = configmod.resolve(write_config(tmp_path, FULL_SECTION, base), env={})
    role = project.role(config, ACCOUNT)
    assert role is not None
    return {s["Sid"]: s for s in role.policy["Statement"]}


@pytest.mark.parametrize(
    ("registry", "region", "prefix"),
    [
        ("123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/team", "ap-northeast-1", "team/"),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "us-east-1", ""),
        ("123456789012.dkr-ecr.us-east-2.on.aws", "us-east-2", ""),
        ("123456789012.dkr-ecr-fips.us-west-2.on.aws/ns", "us-west-2", "ns/"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", ""),
    ],
)
def test_every_ecr_endpoint_gets_push_rights_on_its_repositories(
    tmp_path: Path, registry: str, region: str, prefix: str
) -> None:
    found = statements(tmp_path, registry)
    assert found["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]
    assert found["EcrPushPull"]["Resource"] == [
        f"arn:aws:ecr:{region}:123456789012:repository/{prefix}{repo}" for repo in REPOS
    ]


def test_registry_ecr_uses_the_callers_account_and_region(tmp_path: Path) -> None:
    assert statements(tmp_path, "ecr")["EcrPushPull"]["Resource"] == [
        f"arn:aws:ecr:eu-central-1:999999999999:repository/{repo}" for repo in REPOS
    ]


@pytest.mark.parametrize(
    "registry",
    [
        "127.0.0.1:5000",
        "registry.example.com/team",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com.example.com",
        "123456789012.dkr-ecr.eu-west-1.api.aws",
    ],
)
def test_other_registries_get_no_ecr_rights(tmp_path: Path, registry: str) -> None:
    assert not any(sid.startswith("Ecr") for sid in statements(tmp_path, registry))


def test_a_namespaced_ecr_registry_names_its_repositories_within_the_namespace(
    tmp_path: Path,
) -> None:
    """The role's ARNs are the repositories `--push` creates and pushes to: the namespace, then
    the name (an ecr.repositories override too), never the bare name."""
    registry = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/team/web"
    base = SHOP.replace("123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/team", registry)
    config = configmod.resolve(
        write_config(tmp_path, FULL_SECTION + "ecr:\n  repositories: {app: storefront}\n", base),
        env={},
    )
    role = project.role(config, ACCOUNT)
    assert role is not None
    found = {s["Sid"]: s for s in role.policy["Statement"]}
    prefix = "arn:aws:ecr:ap-northeast-1:123456789012:repository/team/web"
    assert found["EcrPushPull"]["Resource"] == [
        f"{prefix}/shop-ruby",
        f"{prefix}/shop-base",
        f"{prefix}/storefront",
    ]
