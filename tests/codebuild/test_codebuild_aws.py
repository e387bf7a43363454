"""`imgbuild codebuild plan|apply` against moto's server (tests/aws_fixtures.py): real boto3 calls,
validated by botocore, round-tripping through CodeBuild and IAM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from buildkit.codebuild import changes, project
from buildkit.config import loading as configmod
from tests.aws_fixtures import ACCOUNT, REGION, aws_env, moto_calls, moto_server  # noqa: F401
from tests.codebuild.test_codebuild_buildspec import VERIFY_SECTION, write_verify_config
from tests.config.test_codebuild_config import FULL_SECTION, write_config

WRITES = {
    "CreateProject",
    "UpdateProject",
    "CreateWebhook",
    "UpdateWebhook",
    "CreateReportGroup",
    "UpdateReportGroup",
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
}
KINDS = ("pr", "main", "batch")
ECR_REPOS = [
    f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/shop-{layer}"
    for layer in ("ruby", "base", "app")
]


def imgbuild(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(config), "codebuild", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def imgbuild_json(config: Path, *args: str) -> Any:
    result = imgbuild(config, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def codebuild() -> Any:
    return boto3.client("codebuild", region_name=REGION)


def projects() -> dict[str, dict[str, Any]]:
    names = ["shop-pr", "shop-main", "shop-batch"]
    return {p["name"]: p for p in codebuild().batch_get_projects(names=names)["projects"]}


def actions(plan: dict[str, Any]) -> dict[str, str]:
    return {f"{c['kind']} {c['name']}": c["action"] for c in plan["changes"]}


@pytest.fixture
def shop(tmp_path: Path, aws_env: str) -> Path:  # noqa: F811
    return write_config(tmp_path / "shop")


def test_apply_creates_everything_and_a_second_apply_changes_nothing(
    shop: Path,
    moto_calls: list[tuple[str, str]],  # noqa: F811
) -> None:
    first = imgbuild_json(shop, "apply", "--yes")
    assert sorted(f"{c['kind']} {c['name']}" for c in first["applied"]) == sorted(
        [
            "role shop-codebuild",
            "role policy shop-codebuild/imgbuild-codebuild",
            *(f"report group shop-{k}-size" for k in ("pr", "main", "batch")),
            *(f"project shop-{k}" for k in ("pr", "main", "batch")),
            "webhook shop-pr",
            "webhook shop-main",
        ]
    )
    assert {a for _, a in moto_calls} & WRITES
    moto_calls.clear()
    second = imgbuild(shop, "apply", "--yes")
    assert second.returncode == 0, second.stderr
    assert "plan: 0 to create, 0 to update, 10 unchanged" in second.stdout
    assert "nothing to change" in second.stderr
    assert moto_calls, "the second apply must have read the current state"
    assert not {a for _, a in moto_calls} & WRITES, moto_calls


def test_a_non_privileged_project_drops_the_docker_layer_cache(tmp_path: Path) -> None:
    """No daemon, nothing for LOCAL_DOCKER_LAYER_CACHE to keep (it needs privileged mode)."""
    path = write_config(tmp_path / "shop", FULL_SECTION + "  privileged: false\n")
    config = configmod.resolve(path, env={})
    specs = project.projects(config, project.Account(ACCOUNT, REGION))
    for spec in specs:
        assert spec.params["environment"]["privilegedMode"] is False
        assert spec.params["cache"] == {"type": "LOCAL", "modes": ["LOCAL_SOURCE_CACHE"]}
    privileged = configmod.resolve(write_config(tmp_path / "default"), env={})
    for spec in project.projects(privileged, project.Account(ACCOUNT, REGION)):
        assert spec.params["environment"]["privilegedMode"] is True
        assert spec.params["cache"]["modes"] == [
            "LOCAL_DOCKER_LAYER_CACHE",
            "LOCAL_SOURCE_CACHE",
        ]


def test_a_changed_compute_type_shows_in_plan_and_is_applied(shop: Path) -> None:
    imgbuild_json(shop, "apply", "--yes")
    shop.write_text(shop.read_text().replace("BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_LARGE"))
    plan = imgbuild(shop, "plan")
    assert plan.returncode == 0, plan.stderr
    for name in ("shop-pr", "shop-main", "shop-batch"):
        assert f"~ update project {name}" in plan.stdout
    assert 'environment.computeType: "BUILD_GENERAL1_SMALL" → "BUILD_GENERAL1_LARGE"' in plan.stdout
    assert (
        'buildBatchConfig.restrictions.computeTypesAllowed: ["BUILD_GENERAL1_SMALL"] → '
        '["BUILD_GENERAL1_LARGE"]' in plan.stdout
    )
    assert "plan: 0 to create, 3 to update, 7 unchanged" in plan.stdout
    imgbuild_json(shop, "apply", "--yes")
    current = projects()
    assert {p["environment"]["computeType"] for p in current.values()} == {"BUILD_GENERAL1_LARGE"}
    assert set(actions(imgbuild_json(shop, "plan")).values()) == {"unchanged"}


def test_webhooks_and_batch_config_read_back_exactly_as_configured(shop: Path) -> None:
    imgbuild_json(shop, "apply", "--yes")
    current = projects()
    file_path = {"type": "FILE_PATH", "pattern": "(?:^app/)|(?:^Gemfile)"}
    pr_events = "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED"
    assert current["shop-pr"]["webhook"]["filterGroups"] == [
        [{"type": "EVENT", "pattern": pr_events}, file_path]
    ]
    assert current["shop-main"]["webhook"]["filterGroups"] == [
        [
            {"type": "EVENT", "pattern": "PUSH"},
            {"type": "HEAD_REF", "pattern": "^refs/heads/main$"},
            file_path,
        ]
    ]
    assert {current[n]["webhook"]["buildType"] for n in ("shop-pr", "shop-main")} == {"BUILD"}
    assert "webhook" not in current["shop-batch"]
    role = f"arn:aws:iam::{ACCOUNT}:role/shop-codebuild"
    assert current["shop-batch"]["buildBatchConfig"] == {
        "serviceRole": role,
        "combineArtifacts": False,
        "restrictions": {
            "maximumBuildsAllowed": 3,
            "computeTypesAllowed": ["BUILD_GENERAL1_SMALL"],
        },
        "timeoutInMins": 180,
        "batchReportMode": "REPORT_AGGREGATED_BATCH",
    }
    main = current["shop-main"]
    assert main["source"]["buildspec"] == "buildspecs/main.yml"
    assert main["source"]["type"] == "GITHUB"
    assert main["sourceVersion"] == "main"
    assert main["environment"]["image"] == "aws/codebuild/standard:7.0"
    assert main["environment"]["privilegedMode"] is True
    assert main["environment"]["environmentVariables"] == [
        {"name": "RAILS_ENV", "value": "production", "type": "PLAINTEXT"},
        {"name": "BUNDLE_TOKEN", "value": "ci/bundle:token", "type": "SECRETS_MANAGER"},
        {"name": "API_URL", "value": "/ci/api-url", "type": "PARAMETER_STORE"},
    ]
    assert main["cache"] == {
        "type": "LOCAL",
        "modes": ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"],
    }
    assert main["serviceRole"] == role
    assert main["logsConfig"]["cloudWatchLogs"] == {
        "status": "ENABLED",
        "groupName": "/ci/shop",
        "streamName": "shop-main",
    }
    arns = [
        f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/shop-{k}-size" for k in ("pr", "main")
    ]
    groups = codebuild().batch_get_report_groups(reportGroupArns=arns)["reportGroups"]
    assert [(g["name"], g["type"]) for g in groups] == [
        ("shop-pr-size", "TEST"),
        ("shop-main-size", "TEST"),
    ]


def test_changed_file_paths_update_the_webhooks(shop: Path) -> None:
    imgbuild_json(shop, "apply", "--yes")
    shop.write_text(
        shop.read_text().replace('file_paths: ["^app/", "^Gemfile"]', "file_paths: ^lib/")
    )
    plan = actions(imgbuild_json(shop, "plan"))
    assert plan["webhook shop-pr"] == plan["webhook shop-main"] == "update"
    assert plan["project shop-pr"] == "unchanged"
    imgbuild_json(shop, "apply", "--yes")
    hook = projects()["shop-pr"]["webhook"]["filterGroups"][0]
    assert hook[-1] == {"type": "FILE_PATH", "pattern": "^lib/"}


def test_the_created_role_is_least_privilege(shop: Path) -> None:
    imgbuild_json(shop, "apply", "--yes")
    iam = boto3.client("iam", region_name=REGION)
    trust = iam.get_role(RoleName="shop-codebuild")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "codebuild.amazonaws.com"}
    policy = iam.get_role_policy(RoleName="shop-codebuild", PolicyName="imgbuild-codebuild")
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]
    # `--push` reads BLOB_MOUNTING (account-wide, no resource form); it may not change it.
    assert statements["EcrRegistrySettings"]["Action"] == ["ecr:GetAccountSetting"]
    assert statements["EcrPushPull"]["Resource"] == ECR_REPOS
    assert "ecr:PutImage" in statements["EcrPushPull"]["Action"]
    assert statements["Secrets"]["Resource"] == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ci/bundle-*"
    ]
    assert statements["Parameters"]["Resource"] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/ci/api-url"
    ]
    for statement in statements.values():
        assert all(not a.endswith("*") for a in statement["Action"]), statement
        if statement["Sid"] not in ("EcrLogin", "EcrRegistrySettings"):
            assert "*" not in statement["Resource"], statement
    granted = {a for statement in statements.values() for a in statement["Action"]}
    assert "ecr:PutAccountSetting" not in granted


def test_a_policy_edit_in_aws_shows_as_a_statement_diff(shop: Path) -> None:
    imgbuild_json(shop, "apply", "--yes")
    iam = boto3.client("iam", region_name=REGION)
    document = iam.get_role_policy(RoleName="shop-codebuild", PolicyName="imgbuild-codebuild")
    policy = document["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "Secrets"]
    iam.put_role_policy(
        RoleName="shop-codebuild",
        PolicyName="imgbuild-codebuild",
        PolicyDocument=json.dumps(policy),
    )
    plan = imgbuild(shop, "plan")
    assert "~ update role policy shop-codebuild/imgbuild-codebuild" in plan.stdout
    assert "Statement[Secrets].Action: (unset) → " in plan.stdout


def test_aws_refusals_are_one_line_errors_with_exit_code_11(tmp_path: Path, aws_env: str) -> None:  # noqa: F811
    section = (
        "codebuild:\n  github: https://github.com/acme/shop\n"
        "  service_role: arn:aws:iam::999999999999:role/elsewhere\n"
    )
    config = write_config(tmp_path / "shop", section)
    result = imgbuild(config, "apply", "--yes")
    assert result.returncode == 11
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("imgbuild: error: CodeBuild CreateProject shop-pr failed: ")
    assert "InvalidInputException" in last
    assert "Traceback" not in result.stderr


def test_apply_without_yes_off_a_terminal_changes_nothing(shop: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "buildkit", "-c", str(shop), "codebuild", "apply"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "pass --yes" in result.stderr
    assert projects() == {}


def test_plan_needs_the_github_url_and_a_role(tmp_path: Path, aws_env: str) -> None:  # noqa: F811
    config = write_config(tmp_path / "shop", "codebuild:\n  create_role: true\n")
    result = imgbuild(config, "plan")
    assert result.returncode == 3
    assert "codebuild.github is not set" in result.stderr


def test_the_desired_bodies_pass_botocore_validation(tmp_path: Path) -> None:
    """The request bodies are valid CreateProject/CreateWebhook input for botocore's model."""
    from botocore.validate import validate_parameters

    service = boto3.client("codebuild", region_name=REGION).meta.service_model
    shop_config = configmod.resolve(write_config(tmp_path / "shop"), env={})
    for spec in project.projects(shop_config, project.Account(ACCOUNT, REGION)):
        validate_parameters(spec.params, service.operation_model("CreateProject").input_shape)
        if spec.webhook:
            body = {"projectName": spec.name, **spec.webhook}
            validate_parameters(body, service.operation_model("CreateWebhook").input_shape)
    body = project.report_group("shop-pr-size")
    validate_parameters(body, service.operation_model("CreateReportGroup").input_shape)


def test_diff_compares_only_what_imgbuild_sets() -> None:
    desired = {
        "environment": {"computeType": "M", "environmentVariables": [{"name": "A", "value": "1"}]}
    }
    current = {
        "environment": {
            "computeType": "M",
            "certificate": "extra-default",
            "environmentVariables": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        }
    }
    found = changes.diff(desired, current)
    assert [c.line() for c in found] == ['environment.environmentVariables[B].value: "2" → (unset)']


def test_with_verify_apply_creates_the_tests_report_groups_once(
    tmp_path: Path,
    moto_calls: list[tuple[str, str]],  # noqa: F811
) -> None:
    config = write_verify_config(tmp_path / "shop")
    first = imgbuild_json(config, "apply", "--yes")
    created = {c["name"] for c in first["applied"] if c["kind"] == "report group"}
    assert created == {f"shop-{k}-{g}" for k in ("pr", "main", "batch") for g in ("size", "tests")}
    arns = [f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/shop-{k}-tests" for k in KINDS]
    groups = codebuild().batch_get_report_groups(reportGroupArns=arns)["reportGroups"]
    assert [(g["name"], g["type"]) for g in groups] == [(f"shop-{k}-tests", "TEST") for k in KINDS]
    moto_calls.clear()
    second = imgbuild(config, "apply", "--yes")
    assert second.returncode == 0, second.stderr
    assert "plan: 0 to create, 0 to update, 13 unchanged" in second.stdout
    assert not {a for _, a in moto_calls} & WRITES, moto_calls


def test_adding_verify_creates_the_tests_groups_and_widens_the_role(shop: Path) -> None:
    imgbuild_json(shop, "apply", "--yes")
    shop.write_text(shop.read_text() + VERIFY_SECTION)
    plan = actions(imgbuild_json(shop, "plan"))
    assert {k: v for k, v in plan.items() if v != "unchanged"} == {
        "role policy shop-codebuild/imgbuild-codebuild": "update",
        **{f"report group shop-{k}-tests": "create" for k in KINDS},
    }
    imgbuild_json(shop, "apply", "--yes")
    iam = boto3.client("iam", region_name=REGION)
    policy = iam.get_role_policy(RoleName="shop-codebuild", PolicyName="imgbuild-codebuild")
    reports = next(s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "Reports")
    assert reports["Resource"] == [
        f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/shop-{k}-{g}"
        for k in KINDS
        for g in ("size", "tests")
    ]
    assert set(actions(imgbuild_json(shop, "plan")).values()) == {"unchanged"}


def test_report_groups_name_what_each_buildspec_publishes(tmp_path: Path) -> None:
    plain = configmod.resolve(write_config(tmp_path / "plain"), env={})
    assert project.report_group_names(plain) == [f"shop-{k}-size" for k in KINDS]
    section = FULL_SECTION + "  report_group: tests\n"
    config = configmod.resolve(write_verify_config(tmp_path / "shop", section), env={})
    groups = project.report_groups(config)
    assert [(g.kind, g.publishes, g.key, g.name) for g in groups[:2]] == [
        ("pr", "size", "tests", "shop-pr-tests"),
        ("pr", "tests", "verify-tests", "shop-pr-verify-tests"),
    ]
    assert len(groups) == 6
