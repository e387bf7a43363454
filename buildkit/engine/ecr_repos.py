"""Ensure the chain's ECR repositories exist with the configured settings; report what changed.

Idempotent: a second run with the same settings makes no write call. Encryption cannot be changed
on an existing repository (an ECR rule), so a mismatch is reported, not "fixed".

The registry's BLOB_MOUNTING account setting is turned on too: with it, an app image assembled
in the registry (run/native.py) mounts the base layers into the app's repository instead of
copying them through the machine. ECR mounts only within one registry and between repositories
encrypted alike; a setting imgbuild may not read or change, or one the region does not know, is
a warning: pushes still work, they copy the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buildkit import log
from buildkit.config.ecr import EcrSettings
from buildkit.engine import ecr

BLOB_MOUNTING = "BLOB_MOUNTING"
MOUNTING_ENABLED = (
    f"registry: {BLOB_MOUNTING} enabled (app pushes mount base layers instead of copying them)"
)


@dataclass(frozen=True, kw_only=True)
class Desired:
    """What one repository should look like."""

    name: str
    scan_on_push: bool
    encryption: Mapping[str, str]
    exclusions: list[dict[str, str]]
    lifecycle: str
    tags: Mapping[str, str]


def desired(name: str, settings: EcrSettings, release_branches: tuple[str, ...]) -> Desired:
    encryption = {"encryptionType": settings.encryption}
    if settings.kms_key:
        encryption["kmsKey"] = settings.kms_key
    return Desired(
        name=name,
        scan_on_push=settings.scan_on_push,
        encryption=encryption,
        exclusions=ecr.mutability_exclusions(release_branches),
        lifecycle=ecr.lifecycle_policy(
            settings.keep_images, settings.expire_untagged_days, release_branches
        ),
        tags={"managed-by": "imgbuild", **settings.tags},
    )


def ensure(registry: ecr.EcrRegistry, wanted: list[Desired]) -> list[str]:
    """Create or update each repository and turn blob mounting on; return one line per change."""
    client = ecr.client("ecr", registry.region)
    existing = _describe(client, registry, [w.name for w in wanted])
    changes: list[str] = []
    for want in wanted:
        current = existing.get(want.name)
        if current is None:
            _create(client, registry, want)
            changes.append(f"{want.name}: created")
            current = _describe(client, registry, [want.name])[want.name]
            existing[want.name] = current
        changes += _update(client, registry, want, current)
    _check_same_encryption({w.name: existing[w.name] for w in wanted})
    changes += _ensure_blob_mounting(client, registry)
    for change in changes:
        log.info(f"ecr: {change}")
    return changes


def _describe(client: Any, registry: ecr.EcrRegistry, names: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in names:
        response = ecr.call_allowing(
            f"ecr describe-repositories {name}",
            client.describe_repositories,
            ("RepositoryNotFoundException",),
            registryId=registry.account,
            repositoryNames=[name],
        )
        if response is not None:
            found[name] = response["repositories"][0]
    return found


def _create(client: Any, registry: ecr.EcrRegistry, want: Desired) -> None:
    ecr.call(
        f"ecr create-repository {want.name}",
        client.create_repository,
        registryId=registry.account,
        repositoryName=want.name,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=want.exclusions,
        imageScanningConfiguration={"scanOnPush": want.scan_on_push},
        encryptionConfiguration=dict(want.encryption),
        tags=ecr.tags_as_list(want.tags),
    )


def _update(client: Any, registry: ecr.EcrRegistry, want: Desired, current: Any) -> list[str]:
    changes = []
    scan = current.get("imageScanningConfiguration", {}).get("scanOnPush", False)
    if scan != want.scan_on_push:
        ecr.call(
            f"ecr put-image-scanning-configuration {want.name}",
            client.put_image_scanning_configuration,
            registryId=registry.account,
            repositoryName=want.name,
            imageScanningConfiguration={"scanOnPush": want.scan_on_push},
        )
        changes.append(f"{want.name}: scanOnPush {scan} → {want.scan_on_push}")
    changes += _update_mutability(client, registry, want, current)
    changes += _check_encryption(want, current)
    changes += _update_tags(client, registry, want, current)
    changes += _update_lifecycle(client, registry, want)
    return changes


def _update_mutability(
    client: Any, registry: ecr.EcrRegistry, want: Desired, current: Any
) -> list[str]:
    mutability = current.get("imageTagMutability")
    filters = current.get("imageTagMutabilityExclusionFilters") or []
    if mutability == "IMMUTABLE_WITH_EXCLUSION" and filters == want.exclusions:
        return []
    ecr.call(
        f"ecr put-image-tag-mutability {want.name}",
        client.put_image_tag_mutability,
        registryId=registry.account,
        repositoryName=want.name,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=want.exclusions,
    )
    return [f"{want.name}: tag mutability {mutability} → IMMUTABLE_WITH_EXCLUSION"]


def _check_encryption(want: Desired, current: Any) -> list[str]:
    have = current.get("encryptionConfiguration", {})
    if have.get("encryptionType") == want.encryption["encryptionType"] and (
        "kmsKey" not in want.encryption or have.get("kmsKey") == want.encryption["kmsKey"]
    ):
        return []
    log.warn(
        f"ecr: {want.name} is encrypted with {have.get('encryptionType')}, the config says "
        f"{want.encryption['encryptionType']}; ECR cannot change it in place (recreate the "
        "repository to apply it)"
    )
    return []


def _encryption_text(repository: Any) -> str:
    have = repository.get("encryptionConfiguration") or {}
    kind = str(have.get("encryptionType") or "AES256")
    return f"{kind} {have['kmsKey']}" if have.get("kmsKey") else kind


def _check_same_encryption(repositories: Mapping[str, Any]) -> None:
    """ECR mounts a blob only between repositories encrypted alike: say so when they are not."""
    kinds = {name: _encryption_text(repo) for name, repo in repositories.items()}
    if len(set(kinds.values())) <= 1:
        return
    listed = ", ".join(f"{name}: {kind}" for name, kind in kinds.items())
    log.warn(
        f"ecr: the chain's repositories are encrypted differently ({listed}); ECR mounts layers "
        "only between repositories with identical encryption, so pushes copy them through this "
        "machine instead. Recreate the odd one with the config's ecr.encryption/ecr.kms_key"
    )


def _ensure_blob_mounting(client: Any, registry: ecr.EcrRegistry) -> list[str]:
    """BLOB_MOUNTING on (an account setting of the registry); a change line when turned on."""
    if not hasattr(client, "get_account_setting"):  # a botocore older than the API
        log.warn(
            f"ecr: this botocore cannot read ECR account settings, so BLOB_MOUNTING on "
            f"{registry.host} is not checked; app pushes copy the base layers if it is off. "
            f"Upgrade boto3, or run {_enable_command(registry)} once"
        )
        return []
    caller = _caller_account(registry)
    if caller is not None and caller != registry.account:
        log.info(
            f"ecr: {registry.host} belongs to account {registry.account}, not this caller's "
            f"({caller}): BLOB_MOUNTING is that account's setting, not checked from here"
        )
        return []
    current = ecr.call_or_refusal(
        f"ecr get-account-setting {BLOB_MOUNTING}",
        client.get_account_setting,
        name=BLOB_MOUNTING,
    )
    if isinstance(current, ecr.Refusal):
        _warn_mounting(registry, current, "ecr:GetAccountSetting", None)
        return []
    value = str(current.get("value") or "DISABLED")
    if value == "ENABLED":
        return []
    done = ecr.call_or_refusal(
        f"ecr put-account-setting {BLOB_MOUNTING}",
        client.put_account_setting,
        name=BLOB_MOUNTING,
        value="ENABLED",
    )
    if isinstance(done, ecr.Refusal):
        _warn_mounting(registry, done, "ecr:PutAccountSetting", value)
        return []
    return [MOUNTING_ENABLED]


def _caller_account(registry: ecr.EcrRegistry) -> str | None:
    sts = ecr.client("sts", registry.region)
    identity = ecr.call_or_refusal("sts get-caller-identity", sts.get_caller_identity)
    return None if isinstance(identity, ecr.Refusal) else str(identity["Account"])


def _enable_command(registry: ecr.EcrRegistry) -> str:
    return (
        f"`aws ecr put-account-setting --name {BLOB_MOUNTING} --value ENABLED "
        f"--region {registry.region}`"
    )


def _warn_mounting(
    registry: ecr.EcrRegistry, refusal: ecr.Refusal, action: str, value: str | None
) -> None:
    """One warning for a setting imgbuild could not read (value None) or change; never fatal."""
    setting = f"{BLOB_MOUNTING} on {registry.host}"
    effect = "app pushes copy the base layers through this machine instead of mounting them"
    command = _enable_command(registry)
    if refusal.denied and value is not None:
        log.warn(
            f"ecr: {setting} is {value} and this identity may not turn it on ({action} denied: "
            f"{refusal.message}); {effect}. Run {command} once as someone allowed to, or "
            "`imgbuild ecr ensure` with ecr:PutAccountSetting"
        )
    elif refusal.denied:
        log.warn(
            f"ecr: this identity may not read {setting} ({action} denied: {refusal.message}); "
            f"if it is off, {effect}. Allow ecr:GetAccountSetting and ecr:PutAccountSetting, "
            f"or run {command} once as someone allowed to"
        )
    elif 400 <= refusal.status < 500:
        log.warn(
            f"ecr: the ECR API in {registry.region} does not accept {BLOB_MOUNTING} ({refusal}); "
            f"{effect}. Nothing to do: `imgbuild ecr ensure` turns it on once the region has it"
        )
    else:
        log.warn(
            f"ecr: could not {'read' if value is None else 'change'} {setting} ({refusal}); if "
            f"it is off, {effect}. Run `imgbuild ecr ensure` again later, or {command}"
        )


def _update_tags(client: Any, registry: ecr.EcrRegistry, want: Desired, current: Any) -> list[str]:
    arn = current.get("repositoryArn") or ecr.repository_arn(registry, want.name)
    have = ecr.call(f"ecr list-tags {want.name}", client.list_tags_for_resource, resourceArn=arn)
    current_tags = {t["Key"]: t["Value"] for t in have.get("tags", [])}
    missing = {k: v for k, v in want.tags.items() if current_tags.get(k) != v}
    if not missing:
        return []
    ecr.call(
        f"ecr tag-resource {want.name}",
        client.tag_resource,
        resourceArn=arn,
        tags=ecr.tags_as_list(missing),
    )
    return [f"{want.name}: tags {', '.join(f'{k}={v}' for k, v in sorted(missing.items()))}"]


def _update_lifecycle(client: Any, registry: ecr.EcrRegistry, want: Desired) -> list[str]:
    have = ecr.call_allowing(
        f"ecr get-lifecycle-policy {want.name}",
        client.get_lifecycle_policy,
        ("LifecyclePolicyNotFoundException",),
        registryId=registry.account,
        repositoryName=want.name,
    )
    if have is not None and ecr.normalized_policy(have["lifecyclePolicyText"]) == (
        ecr.normalized_policy(want.lifecycle)
    ):
        return []
    ecr.call(
        f"ecr put-lifecycle-policy {want.name}",
        client.put_lifecycle_policy,
        registryId=registry.account,
        repositoryName=want.name,
        lifecyclePolicyText=want.lifecycle,
    )
    return [f"{want.name}: lifecycle policy {'set' if have is None else 'updated'}"]
