"""`imgbuild codebuild plan|apply`: read CodeBuild and IAM, plan (changes.py), converge.

Applying an unchanged config makes no write call at all: `apply` only carries out the plan's
pending changes, in order (role, report groups, projects, webhooks).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from buildkit.codebuild import project
from buildkit.codebuild.changes import Change, Plan, compare
from buildkit.codebuild.project import Account
from buildkit.config.loading import Config
from buildkit.errors import AwsError


class Clients:
    """boto3 clients for one account and region (AWS_* variables and profiles apply)."""

    def __init__(self, region: str | None = None) -> None:
        import boto3
        import botocore.config
        import botocore.exceptions

        try:
            session = boto3.Session(region_name=region) if region else boto3.Session()
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(f"cannot start an AWS session: {exc}") from None
        if not session.region_name:
            raise AwsError(
                "no AWS region: set codebuild.region in imgbuild.yaml, AWS_REGION or "
                "AWS_DEFAULT_REGION"
            )
        config = botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"})
        self.region: str = session.region_name
        self.codebuild = session.client("codebuild", config=config)
        self.iam = session.client("iam", config=config)
        self.sts = session.client("sts", config=config)


def call(what: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """One AWS call; every failure becomes a one-line AwsError naming the call."""
    return call_or_none(what, (), function, **kwargs)


def call_or_none(
    what: str, missing: tuple[str, ...], function: Callable[..., Any], **kwargs: Any
) -> Any:
    """Like call, but None when AWS answers with one of the `missing` error codes."""
    import botocore.exceptions

    try:
        return function(**kwargs)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        if code in missing:
            return None
        raise AwsError(
            f"{what} failed: {code}: {message}; check the credentials, the region and the "
            "caller's IAM permissions"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(f"{what} failed: {exc}; check the credentials and the network") from None


def account_of(clients: Clients) -> Account:
    identity = call("STS GetCallerIdentity", clients.sts.get_caller_identity)
    partition = str(identity.get("Arn", "arn:aws:")).split(":")[1] or "aws"
    return Account(id=str(identity["Account"]), region=clients.region, partition=partition)


# --- reading what exists -------------------------------------------------------------------------


def _current_projects(clients: Clients, names: list[str]) -> dict[str, dict[str, Any]]:
    found = call("CodeBuild BatchGetProjects", clients.codebuild.batch_get_projects, names=names)
    return {p["name"]: p for p in found.get("projects", [])}


def _current_report_groups(clients: Clients, arns: list[str]) -> dict[str, dict[str, Any]]:
    found = call(
        "CodeBuild BatchGetReportGroups",
        clients.codebuild.batch_get_report_groups,
        reportGroupArns=arns,
    )
    return {g["name"]: g for g in found.get("reportGroups", [])}


def _current_role(clients: Clients, spec: project.RoleSpec) -> tuple[Any, Any]:
    """(trust policy, inline policy) of the role, None for what does not exist."""
    missing = ("NoSuchEntity",)
    role = call_or_none(
        f"IAM GetRole {spec.name}", missing, clients.iam.get_role, RoleName=spec.name
    )
    if role is None:
        return None, None
    policy = call_or_none(
        f"IAM GetRolePolicy {spec.name}",
        missing,
        clients.iam.get_role_policy,
        RoleName=spec.name,
        PolicyName=spec.policy_name,
    )
    trust = _decoded(role["Role"].get("AssumeRolePolicyDocument"))
    return trust, None if policy is None else _decoded(policy["PolicyDocument"])


def _decoded(document: Any) -> Any:
    if isinstance(document, str):
        from urllib.parse import unquote

        return json.loads(unquote(document))
    return document


def _webhook_state(current: dict[str, Any] | None) -> dict[str, Any] | None:
    hook = (current or {}).get("webhook")
    if not hook or "filterGroups" not in hook:
        return None
    groups = [
        [
            {k: v for k, v in f.items() if not (k == "excludeMatchedPattern" and v is False)}
            for f in g
        ]
        for g in hook.get("filterGroups") or []
    ]
    return {"filterGroups": groups, "buildType": hook.get("buildType", "BUILD")}


def report_group_arn(account: Account, name: str) -> str:
    return f"arn:{account.partition}:codebuild:{account.region}:{account.id}:report-group/{name}"


def make_plan(config: Config, clients: Clients) -> Plan:
    account = account_of(clients)
    specs = project.projects(config, account)
    changes: list[Change] = []
    role = project.role(config, account)
    if role is not None:
        trust, policy = _current_role(clients, role)
        changes.append(
            compare("role", role.name, {"AssumeRolePolicyDocument": role.assume}, _trust(trust))
        )
        changes.append(
            compare("role policy", f"{role.name}/{role.policy_name}", role.policy, policy)
        )
    groups = project.report_group_names(config)
    existing = _current_report_groups(clients, [report_group_arn(account, g) for g in groups])
    for name in groups:
        body = project.report_group(name)
        wanted = {k: v for k, v in body.items() if k != "name"}
        current_group = _only(existing.get(name), wanted)
        changes.append(compare("report group", name, body, current_group, fields_of=wanted))
    current = _current_projects(clients, [s.name for s in specs])
    for spec in specs:
        changes.append(compare("project", spec.name, spec.params, current.get(spec.name)))
    for spec in specs:
        if spec.webhook is not None:
            hook = _webhook_state(current.get(spec.name))
            changes.append(compare("webhook", spec.name, spec.webhook, hook))
    return Plan(account=account, changes=tuple(changes))


def _trust(document: Any) -> dict[str, Any] | None:
    return None if document is None else {"AssumeRolePolicyDocument": document}


def _only(current: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any] | None:
    if current is None:
        return None
    return {k: current[k] for k in wanted if k in current}


# --- applying ------------------------------------------------------------------------------------


def apply(config: Config, plan: Plan, clients: Clients) -> list[Change]:
    """Carry out the plan's pending changes in order; returns what was done."""
    role_created = False
    for change in plan.pending:
        if change.kind == "role":
            _apply_role(config, change, clients)
            role_created = role_created or change.action == "create"
        elif change.kind == "role policy":
            role = change.name.split("/", 1)
            call(
                f"IAM PutRolePolicy {change.name}",
                clients.iam.put_role_policy,
                RoleName=role[0],
                PolicyName=role[1],
                PolicyDocument=json.dumps(change.body),
            )
        elif change.kind == "report group":
            _apply_report_group(change, plan.account, clients)
        elif change.kind == "project":
            _apply_project(change, clients, wait_for_role=role_created)
        else:
            _apply_webhook(change, clients)
    return list(plan.pending)


def _apply_role(config: Config, change: Change, clients: Clients) -> None:
    trust = json.dumps(change.body["AssumeRolePolicyDocument"])
    if change.action == "create":
        call(
            f"IAM CreateRole {change.name}",
            clients.iam.create_role,
            RoleName=change.name,
            AssumeRolePolicyDocument=trust,
            Description=f"CodeBuild service role for imgbuild ({config.name})",
            Tags=[{"Key": project.MANAGED_TAG["key"], "Value": project.MANAGED_TAG["value"]}],
        )
    else:
        call(
            f"IAM UpdateAssumeRolePolicy {change.name}",
            clients.iam.update_assume_role_policy,
            RoleName=change.name,
            PolicyDocument=trust,
        )


def _apply_report_group(change: Change, account: Account, clients: Clients) -> None:
    body = change.body
    if change.action == "create":
        call(
            f"CodeBuild CreateReportGroup {change.name}",
            clients.codebuild.create_report_group,
            **body,
        )
        return
    call(
        f"CodeBuild UpdateReportGroup {change.name}",
        clients.codebuild.update_report_group,
        arn=report_group_arn(account, change.name),
        exportConfig=body["exportConfig"],
        tags=body["tags"],
    )


def _apply_project(change: Change, clients: Clients, *, wait_for_role: bool) -> None:
    creating = change.action == "create"
    function = clients.codebuild.create_project if creating else clients.codebuild.update_project
    what = f"CodeBuild {'CreateProject' if creating else 'UpdateProject'} {change.name}"
    if not wait_for_role:
        call(what, function, **change.body)
        return
    _retry_while_role_propagates(lambda: call(what, function, **change.body))


def _retry_while_role_propagates(action: Callable[[], Any]) -> None:
    """A new IAM role takes seconds to be usable by CodeBuild; retry only that refusal."""
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda e: (
                isinstance(e, AwsError)
                and "InvalidInputException" in e.message
                and "role" in e.message.lower()
            )
        ),
        wait=tenacity.wait_exponential(multiplier=2, max=15),
        stop=tenacity.stop_after_delay(90),
        reraise=True,
    )
    retrying(action)


def _apply_webhook(change: Change, clients: Clients) -> None:
    if change.action == "create":
        call(
            f"CodeBuild CreateWebhook {change.name}",
            clients.codebuild.create_webhook,
            projectName=change.name,
            **change.body,
        )
    else:
        call(
            f"CodeBuild UpdateWebhook {change.name}",
            clients.codebuild.update_webhook,
            projectName=change.name,
            **change.body,
        )
