"""`ecr ensure` (and the ensure of `--push`) turns the registry's BLOB_MOUNTING on, once, and never
fails a run over it: against moto's server, extended in tests/aws_fixtures.py with ECR's account
settings and with ECR's answer to an IAM-denied call, under moto's own IAM policy enforcement."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from buildkit.config.ecr import EcrSettings
from buildkit.engine import ecr, ecr_repos
from tests import aws_fixtures
from tests.aws_fixtures import (  # noqa: F401
    ACCOUNT,
    REGION,
    aws_env,
    iam_caller,
    moto_calls,
    moto_server,
)

HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
REGISTRY = ecr.EcrRegistry(ACCOUNT, REGION, HOST, HOST)
NAMES = ("shop-ruby", "shop-base", "shop-app")
WRITES = {
    "CreateRepository",
    "PutLifecyclePolicy",
    "PutImageScanningConfiguration",
    "PutImageTagMutability",
    "TagResource",
    "PutAccountSetting",
}
ENABLE = f"`aws ecr put-account-setting --name BLOB_MOUNTING --value ENABLED --region {REGION}`"


def wanted(settings: EcrSettings | None = None) -> list[ecr_repos.Desired]:
    return [ecr_repos.desired(n, settings or EcrSettings(), ("main",)) for n in NAMES]


def ecr_client() -> Any:
    return boto3.client("ecr", region_name=REGION)


def mounting() -> str:
    return str(ecr_client().get_account_setting(name="BLOB_MOUNTING")["value"])


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("imgbuild: warning:")]


def test_the_first_ensure_enables_mounting_the_second_writes_nothing(
    moto_calls: list[tuple[str, str]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert mounting() == "DISABLED"
    first = ecr_repos.ensure(REGISTRY, wanted())
    assert first[-1] == ecr_repos.MOUNTING_ENABLED
    assert first[-1] == (
        "registry: BLOB_MOUNTING enabled (app pushes mount base layers instead of copying them)"
    )
    assert mounting() == "ENABLED"
    assert f"imgbuild: ecr: {ecr_repos.MOUNTING_ENABLED}" in capsys.readouterr().err

    moto_calls.clear()
    assert ecr_repos.ensure(REGISTRY, wanted()) == []
    assert ("ecr", "GetAccountSetting") in moto_calls
    assert [a for _, a in moto_calls if a in WRITES] == []
    assert warnings(capsys.readouterr().err) == []


def test_a_registry_already_mounting_gets_no_write(
    moto_calls: list[tuple[str, str]],  # noqa: F811
) -> None:
    ecr_client().put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    moto_calls.clear()
    changes = ecr_repos.ensure(REGISTRY, wanted())
    assert ecr_repos.MOUNTING_ENABLED not in changes
    assert ("ecr", "PutAccountSetting") not in moto_calls


def test_a_caller_denied_the_change_is_warned_once_and_the_ensure_goes_on(
    iam_caller: Callable[..., str],  # noqa: F811
    moto_calls: list[tuple[str, str]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = iam_caller(deny=["ecr:PutAccountSetting"])
    changes = ecr_repos.ensure(REGISTRY, wanted())
    assert [c for c in changes if c.endswith(": created")] == [f"{n}: created" for n in NAMES]
    assert ecr_repos.MOUNTING_ENABLED not in changes
    assert ("ecr", "PutAccountSetting") in moto_calls  # asked, and refused by moto's IAM
    assert mounting() == "DISABLED"
    with pytest.raises(ClientError) as refused:  # what ECR answers, not moto's XML AccessDenied
        ecr_client().put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    [warning] = warnings(capsys.readouterr().err)
    assert f"BLOB_MOUNTING on {HOST} is DISABLED" in warning
    assert "ecr:PutAccountSetting denied" in warning
    assert f"{user} is not authorized to perform: ecr:PutAccountSetting" in warning
    assert ENABLE in warning
    assert "copy the base layers" in warning


def test_a_caller_that_may_not_read_the_setting_does_not_try_to_write_it(
    iam_caller: Callable[..., str],  # noqa: F811
    moto_calls: list[tuple[str, str]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    iam_caller(deny=["ecr:GetAccountSetting", "ecr:PutAccountSetting"])
    changes = ecr_repos.ensure(REGISTRY, wanted())
    assert len([c for c in changes if c.endswith(": created")]) == 3
    assert ("ecr", "PutAccountSetting") not in moto_calls
    [warning] = warnings(capsys.readouterr().err)
    assert f"may not read BLOB_MOUNTING on {HOST}" in warning
    assert "ecr:GetAccountSetting denied" in warning
    assert ENABLE in warning


def test_a_region_without_the_setting_is_a_warning_not_a_failure(
    aws_env: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    known = {k: v for k, v in aws_fixtures.ACCOUNT_SETTINGS.items() if k != "BLOB_MOUNTING"}
    monkeypatch.setattr(aws_fixtures, "ACCOUNT_SETTINGS", known)
    changes = ecr_repos.ensure(REGISTRY, wanted())
    assert len([c for c in changes if c.endswith(": created")]) == 3
    assert ecr_repos.MOUNTING_ENABLED not in changes
    [warning] = warnings(capsys.readouterr().err)
    assert f"the ECR API in {REGION} does not accept BLOB_MOUNTING (ValidationException" in warning
    assert "Nothing to do" in warning


def test_repositories_encrypted_differently_are_warned_about(
    aws_env: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000-base"
    ecr_client().create_repository(
        repositoryName="shop-base",
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key},
    )
    ecr_repos.ensure(REGISTRY, wanted())
    mixed = [w for w in warnings(capsys.readouterr().err) if "encrypted differently" in w]
    assert mixed == [
        "imgbuild: warning: ecr: the chain's repositories are encrypted differently "
        f"(shop-ruby: AES256, shop-base: KMS {key}, shop-app: AES256); ECR mounts layers only "
        "between repositories with identical encryption, so pushes copy them through this "
        "machine instead. Recreate the odd one with the config's ecr.encryption/ecr.kms_key"
    ]


def test_repositories_encrypted_alike_are_not_warned_about(
    aws_env: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000-chain"
    ecr_repos.ensure(REGISTRY, wanted(EcrSettings(encryption="KMS", kms_key=key)))
    ecr_repos.ensure(REGISTRY, wanted(EcrSettings(encryption="KMS", kms_key=key)))
    assert warnings(capsys.readouterr().err) == []


def test_another_accounts_registry_is_left_to_its_owner(
    aws_env: str,  # noqa: F811
    moto_calls: list[tuple[str, str]],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = "111122223333"
    host = f"{other}.dkr.ecr.{REGION}.amazonaws.com"
    changes = ecr_repos.ensure(ecr.EcrRegistry(other, REGION, host, host), wanted())
    assert ecr_repos.MOUNTING_ENABLED not in changes
    assert not [a for _, a in moto_calls if a.endswith("AccountSetting")]
    err = capsys.readouterr().err
    assert f"{host} belongs to account {other}, not this caller's ({ACCOUNT})" in err
    assert warnings(err) == []


def test_the_cli_says_so_then_says_no_changes(aws_env: str, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "imgbuild.yaml"
    config.write_text(f'name: shop\nregistry: {HOST}\nruby:\n  version: "3.3.8"\n')

    def ensure() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "buildkit", "-c", str(config), "ecr", "ensure"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    first = ensure()
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == ecr_repos.MOUNTING_ENABLED
    second = ensure()
    assert second.returncode == 0, second.stderr
    assert second.stdout == "no changes\n"
