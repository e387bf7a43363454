"""Ensure the chain's ECR repositories exist with the configured settings; report what changed.

Idempotent: a second run with the same settings makes no write call. Encryption cannot be changed
on an existing repository (an ECR rule), so a mismatch is reported, not "fixed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buildkit import log
from buildkit.config.ecr import EcrSettings
from buildkit.engine import ecr


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
    """Create or update each repository; return one line per change made."""
    client = ecr.client("ecr", registry.region)
    existing = _describe(client, registry, [w.name for w in wanted])
    changes: list[str] = []
    for want in wanted:
        current = existing.get(want.name)
        if current is None:
            _create(client, registry, want)
            changes.append(f"{want.name}: created")
            current = _describe(client, registry, [want.name])[want.name]
        changes += _update(client, registry, want, current)
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
