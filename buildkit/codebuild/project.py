"""The CodeBuild resources a config asks for, as the request bodies of the CodeBuild/IAM APIs.

Projects: `<project>-pr` (pull-request webhook), `<project>-main` (push to the release branch) and,
with `batch: true`, `<project>-batch` (a build-graph batch, started by hand or by a schedule).
Report groups are named `<codebuild project>-<reports key>`, the name CodeBuild gives a
buildspec's `reports` group, so builds use them instead of creating their own: one for the size
check and, with a `verify:` section, one for the tests, for every project. `Account` carries
the account, region and partition: real values for the API, `${AWS::…}` for CloudFormation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from buildkit.chain import layers
from buildkit.codebuild import batchgraph, buildspec, runtime
from buildkit.config.loading import Config
from buildkit.engine import reference
from buildkit.errors import ConfigError

PR_EVENTS = "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED"
CACHE_MODES = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]
#: Without privilegedMode there is no Docker daemon whose layers could be cached (AWS: the Docker
#: layer cache needs privileged mode), so a non-privileged project keeps the source cache only.
UNPRIVILEGED_CACHE_MODES = ["LOCAL_SOURCE_CACHE"]
MANAGED_TAG = {"key": "managed-by", "value": "imgbuild"}
#: Pull and push, plus what `--push` does to keep the repositories as configured (docs/ecr.md):
#: create them, scanning, tag mutability, tags and the lifecycle policy. On these repos only.
_ECR_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:CreateRepository",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetLifecyclePolicy",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:ListTagsForResource",
    "ecr:PutImage",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:PutLifecyclePolicy",
    "ecr:TagResource",
    "ecr:UploadLayerPart",
]
_REPORT_ACTIONS = [
    "codebuild:BatchPutCodeCoverages",
    "codebuild:BatchPutTestCases",
    "codebuild:CreateReport",
    "codebuild:UpdateReport",
]


@dataclass(frozen=True)
class Account:
    id: str
    region: str
    partition: str = "aws"


@dataclass(frozen=True, kw_only=True)
class ProjectSpec:
    kind: str
    name: str
    params: dict[str, Any]  # CreateProject / UpdateProject body
    webhook: dict[str, Any] | None  # CreateWebhook body without projectName


@dataclass(frozen=True, kw_only=True)
class ReportGroupSpec:
    kind: str  # the project's kind: pr, main, batch
    publishes: str  # what the buildspec puts in it: "size" or "tests" (buildspec.report_keys)
    key: str  # the buildspec's `reports` key
    name: str  # `<project>-<kind>-<key>`, as CodeBuild names it


@dataclass(frozen=True, kw_only=True)
class RoleSpec:
    name: str
    assume: dict[str, Any]
    policy_name: str
    policy: dict[str, Any]


def kinds(config: Config) -> tuple[str, ...]:
    return ("pr", "main", "batch") if config.codebuild.batch else ("pr", "main")


def project_name(config: Config, kind: str) -> str:
    return f"{config.codebuild.project}-{kind}"


def role_name(config: Config) -> str:
    return f"{config.codebuild.project}-codebuild"


def report_groups(config: Config) -> list[ReportGroupSpec]:
    """Every report group the buildspecs publish to, project by project."""
    return [
        ReportGroupSpec(
            kind=kind, publishes=publishes, key=key, name=f"{project_name(config, kind)}-{key}"
        )
        for kind in kinds(config)
        for publishes, key in buildspec.report_keys(config).items()
    ]


def report_group_names(config: Config) -> list[str]:
    return [group.name for group in report_groups(config)]


def role_arn(config: Config, account: Account) -> str:
    settings = config.codebuild
    if settings.service_role:
        return settings.service_role
    if settings.create_role:
        return f"arn:{account.partition}:iam::{account.id}:role/{role_name(config)}"
    raise ConfigError(
        f"{config.path}: codebuild needs a service role: set codebuild.service_role to a role "
        "ARN or codebuild.create_role: true"
    )


def require_github(config: Config) -> str:
    if not config.codebuild.github:
        raise ConfigError(
            f"{config.path}: codebuild.github is not set; add the repository URL "
            "(e.g. https://github.com/acme/shop) to create projects"
        )
    return config.codebuild.github


def projects(
    config: Config, account: Account, service_role: str | None = None
) -> list[ProjectSpec]:
    role = service_role or role_arn(config, account)
    return [
        ProjectSpec(
            kind=kind,
            name=project_name(config, kind),
            params=_project(config, kind, role),
            webhook=_webhook(config, kind),
        )
        for kind in kinds(config)
    ]


def _project(config: Config, kind: str, role: str) -> dict[str, Any]:
    settings = config.codebuild
    github = require_github(config)
    source: dict[str, Any] = {
        "type": "GITHUB" if "//github.com/" in github else "GITHUB_ENTERPRISE",
        "location": github,
        "gitCloneDepth": 1,
        "buildspec": buildspec.path_in_repo(config, kind),
        "reportBuildStatus": True,
    }
    params: dict[str, Any] = {
        "name": project_name(config, kind),
        "description": f"imgbuild {config.name}: {kind} builds (generated from imgbuild.yaml)",
        "source": source,
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": _environment(config),
        "cache": {"type": "LOCAL", "modes": cache_modes(config)},
        "serviceRole": role,
        "timeoutInMinutes": settings.timeout_minutes,
        "queuedTimeoutInMinutes": settings.queued_timeout_minutes,
        "logsConfig": {"cloudWatchLogs": _logs(config, kind)},
        "tags": [MANAGED_TAG, *({"key": k, "value": v} for k, v in settings.tags.items())],
    }
    if kind != "pr":
        params["sourceVersion"] = settings.branch
    if kind == "batch":
        params["buildBatchConfig"] = {
            "serviceRole": role,
            "combineArtifacts": False,
            "restrictions": {
                "maximumBuildsAllowed": batchgraph.builds_in_batch(config),
                "computeTypesAllowed": [settings.compute_type],
            },
            "timeoutInMins": min(2160, settings.timeout_minutes * len(runtime.LAYERS)),
            "batchReportMode": "REPORT_AGGREGATED_BATCH",
        }
    return params


def cache_modes(config: Config) -> list[str]:
    return list(CACHE_MODES if config.codebuild.privileged else UNPRIVILEGED_CACHE_MODES)


def _environment(config: Config) -> dict[str, Any]:
    settings = config.codebuild
    return {
        "type": settings.environment_type,
        "image": settings.image,
        "computeType": settings.compute_type,
        "privilegedMode": settings.privileged,
        "imagePullCredentialsType": "CODEBUILD",
        "environmentVariables": [
            {"name": v.name, "value": v.value, "type": v.type} for v in settings.env
        ],
    }


def _logs(config: Config, kind: str) -> dict[str, Any]:
    group = config.codebuild.logs_group
    if group is None:
        return {"status": "ENABLED"}
    return {"status": "ENABLED", "groupName": group, "streamName": project_name(config, kind)}


def _file_path_filter(config: Config) -> list[dict[str, Any]]:
    paths = config.codebuild.file_paths
    if not paths:
        return []
    pattern = paths[0] if len(paths) == 1 else "|".join(f"(?:{p})" for p in paths)
    return [{"type": "FILE_PATH", "pattern": pattern}]


def _webhook(config: Config, kind: str) -> dict[str, Any] | None:
    if kind == "pr":
        group = [{"type": "EVENT", "pattern": PR_EVENTS}]
    elif kind == "main":
        branch = re.escape(config.codebuild.branch)
        group = [
            {"type": "EVENT", "pattern": "PUSH"},
            {"type": "HEAD_REF", "pattern": f"^refs/heads/{branch}$"},
        ]
    else:
        return None
    return {"filterGroups": [group + _file_path_filter(config)], "buildType": "BUILD"}


def report_group(name: str) -> dict[str, Any]:
    """CreateReportGroup body: a test report group that keeps reports in CodeBuild only."""
    return {
        "name": name,
        "type": "TEST",
        "exportConfig": {"exportConfigType": "NO_EXPORT"},
        "tags": [MANAGED_TAG],
    }


def ecr_repositories(config: Config, account: Account) -> list[str]:
    """ARNs of the chain's ECR repositories, for `ecr` or any of ECR's hosts (IPv4, FIPS,
    dual-stack); empty when the registry is not ECR."""
    registry = config.registry
    if not registry:
        return []
    host = reference.split_registry(registry)[0] if registry != "ecr" else ""
    ecr = reference.parse_ecr_host(host)
    if registry != "ecr" and ecr is None:
        return []
    acct, region = (ecr.account, ecr.region) if ecr else (account.id, account.region)
    arns: list[str] = []
    # An app of an `apps:` config shares the batch project and its role with its siblings.
    for app in batchgraph.siblings(config):
        for layer in runtime.LAYERS:
            name = layers.repository_path(app, layer)  # with an ECR namespace: team/shop-app
            arn = f"arn:{account.partition}:ecr:{region}:{acct}:repository/{name}"
            if arn not in arns:
                arns.append(arn)
    return arns


def role(config: Config, account: Account) -> RoleSpec | None:
    """The least-privilege service role, when `create_role: true`."""
    if not config.codebuild.create_role:
        return None
    assume = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return RoleSpec(
        name=role_name(config),
        assume=assume,
        policy_name="imgbuild-codebuild",
        policy={"Version": "2012-10-17", "Statement": _statements(config, account)},
    )


def _arn(account: Account, service: str, resource: str) -> str:
    return f"arn:{account.partition}:{service}:{account.region}:{account.id}:{resource}"


def _statements(config: Config, account: Account) -> list[dict[str, Any]]:
    names = [project_name(config, k) for k in kinds(config)]
    groups = (
        [config.codebuild.logs_group]
        if config.codebuild.logs_group
        else [f"/aws/codebuild/{n}" for n in names]
    )
    logs = [
        _arn(account, "logs", f"log-group:{g}{suffix}") for g in groups for suffix in ("", ":*")
    ]
    reports = [_arn(account, "codebuild", f"report-group/{g}") for g in report_group_names(config)]
    statements = [
        _allow("Logs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], logs),
        _allow("Reports", _REPORT_ACTIONS, reports),
    ]
    repos = ecr_repositories(config, account)
    if repos:
        statements.append(_allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]))
        # Read-only: `--push` checks that BLOB_MOUNTING is on (docs/ecr.md). Turning it on is
        # left to `imgbuild ecr ensure` run once by someone allowed ecr:PutAccountSetting.
        statements.append(_allow("EcrRegistrySettings", ["ecr:GetAccountSetting"], ["*"]))
        statements.append(_allow("EcrPushPull", _ECR_ACTIONS, repos))
    statements.extend(_secret_statements(config, account))
    if config.codebuild.batch:
        batch = _arn(account, "codebuild", f"project/{project_name(config, 'batch')}")
        actions = ["codebuild:RetryBuild", "codebuild:StartBuild", "codebuild:StopBuild"]
        statements.append(_allow("Batch", actions, [batch]))
    return statements


def _secret_statements(config: Config, account: Account) -> list[dict[str, Any]]:
    params, secrets = [], []
    for var in config.codebuild.env:
        if var.type == "PARAMETER_STORE":
            name = var.value if var.value.startswith("/") else f"/{var.value}"
            params.append(_arn(account, "ssm", f"parameter{name}"))
        elif var.type == "SECRETS_MANAGER":
            secrets.append(_secret_arn(account, var.value))
    statements = []
    if params:
        statements.append(_allow("Parameters", ["ssm:GetParameters"], sorted(set(params))))
    if secrets:
        statements.append(
            _allow("Secrets", ["secretsmanager:GetSecretValue"], sorted(set(secrets)))
        )
    return statements


def _secret_arn(account: Account, reference: str) -> str:
    """`name[:json-key[:stage[:version]]]` or a secret ARN → the secret's ARN (any suffix)."""
    if reference.startswith("arn:"):
        return ":".join(reference.split(":")[:7])
    return _arn(account, "secretsmanager", f"secret:{reference.split(':', 1)[0]}-*")


def _allow(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def canonical(value: Any) -> str:
    """A stable text form of a value, for comparing policies."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
