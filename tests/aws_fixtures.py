"""moto's server as the AWS of the tests (ECR, STS, IAM, CodeBuild), pinned to moto 5.2.5.

Import the fixtures where they are used:

    from tests.aws_fixtures import aws_env, moto_calls, moto_server  # noqa: F401

`moto_server` (session) starts ThreadedMotoServer on 127.0.0.1 and a free port and returns its URL;
`aws_env` (per test) wipes moto's state and points boto3 at it through AWS_* variables, including
AWS_ENDPOINT_URL, so subprocesses (the imgbuild CLI) talk to it too; `moto_calls` lists the
(service, operation) requests moto answered since that reset.

moto 5.2.5 lacks CodeBuild's UpdateProject, webhooks and report groups, and drops a project's
buildBatchConfig; `_extend_codebuild` adds them to moto's CodeBuild backend (its internals, hence
the pin) so real boto3 calls, which botocore validates against the service model, round-trip.

It lacks ECR's GetAccountSetting/PutAccountSetting too (HTTP 500); `_extend_ecr` adds them, with
the setting names in ACCOUNT_SETTINGS (a test removes one to play a region that does not know
it), and answers an ECR call that moto's IAM enforcement denies the way ECR does (a JSON
AccessDeniedException, not moto's XML AccessDenied). `iam_caller` switches a test to an IAM user
whose policy moto enforces (allow everything, deny what the test names).
"""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"
MOTO_VERSION = "5.2.5"

_calls: list[tuple[str, str]] = []


def _check_version() -> None:
    from importlib.metadata import version

    found = version("moto")
    if found != MOTO_VERSION:
        pytest.fail(
            f"tests/aws_fixtures.py extends moto {MOTO_VERSION}'s internals; found moto {found}: "
            f"pip install 'moto[server]=={MOTO_VERSION}'"
        )


def _record_calls() -> None:
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action
    if getattr(original, "_imgbuild_recording", False):
        return

    def call_action(self: Any) -> Any:
        _calls.append((str(self.service_name), str(self._get_action())))
        return original(self)

    call_action._imgbuild_recording = True  # type: ignore[attr-defined]
    BaseResponse.call_action = call_action  # type: ignore[method-assign]


def _extend_codebuild() -> None:
    from moto.codebuild.responses import CodeBuildResponse

    keeping = _create_project_keeping_batch(CodeBuildResponse.create_project)
    CodeBuildResponse.create_project = keeping  # type: ignore[method-assign]
    for name in (
        "update_project",
        "create_webhook",
        "update_webhook",
        "delete_webhook",
        "create_report_group",
        "update_report_group",
        "batch_get_report_groups",
        "list_report_groups",
        "delete_report_group",
    ):
        setattr(CodeBuildResponse, name, globals()[f"_{name}"])


#: ECR's account settings: name → (value before any put, accepted values). The names are the ones
#: botocore's model documents for GetAccountSetting; an unknown name is a ValidationException.
ACCOUNT_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BASIC_SCAN_TYPE_VERSION": ("AWS_NATIVE", ("AWS_NATIVE", "CLAIR")),
    "REGISTRY_POLICY_SCOPE": ("V1", ("V1", "V2")),
    "BLOB_MOUNTING": ("DISABLED", ("ENABLED", "DISABLED")),
}


def _extend_ecr() -> None:
    from moto.ecr.responses import ECRResponse

    ECRResponse.get_account_setting = _get_account_setting  # type: ignore[attr-defined]
    ECRResponse.put_account_setting = _put_account_setting  # type: ignore[attr-defined]
    authorize = ECRResponse._authenticate_and_authorize_normal_action
    if not getattr(authorize, "_imgbuild_extended", False):
        ECRResponse._authenticate_and_authorize_normal_action = _denied_as_json(authorize)  # type: ignore[method-assign]


def _account_settings(self: Any) -> dict[str, str]:
    """Stored on the backend (one per account and region, like ECR's), wiped by moto's reset."""
    values: dict[str, str] = self.ecr_backend.__dict__.setdefault("_imgbuild_account_settings", {})
    return values


def _setting_name(self: Any) -> str:
    from moto.ecr.exceptions import ValidationException

    name = str(self._get_param("name"))
    if name not in ACCOUNT_SETTINGS:
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(ACCOUNT_SETTINGS)}]"
        )
    return name


def _get_account_setting(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = _setting_name(self)
    value = _account_settings(self).get(name, ACCOUNT_SETTINGS[name][0])
    return ActionResult({"name": name, "value": value})


def _put_account_setting(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ecr.exceptions import ValidationException

    name = _setting_name(self)
    value = str(self._get_param("value"))
    if value not in ACCOUNT_SETTINGS[name][1]:
        raise ValidationException(f"Invalid value '{value}' for account setting {name}")
    _account_settings(self)[name] = value
    return ActionResult({"name": name, "value": value})


def _denied_as_json(original: Any) -> Any:
    def authorize(self: Any, resource: str = "*") -> None:
        from moto.core.exceptions import AccessDeniedError, JsonRESTError

        try:
            original(self, resource)
        except AccessDeniedError as exc:
            error = JsonRESTError("AccessDeniedException", exc.message)
            error.code = 403
            raise error from None

    authorize._imgbuild_extended = True  # type: ignore[attr-defined]
    return authorize


_EXTRA_PROJECT_FIELDS = ("buildBatchConfig", "concurrentBuildLimit")
_UPDATABLE = (
    "description",
    "source",
    "sourceVersion",
    "artifacts",
    "environment",
    "cache",
    "serviceRole",
    "timeoutInMinutes",
    "queuedTimeoutInMinutes",
    "logsConfig",
    "tags",
    *_EXTRA_PROJECT_FIELDS,
)


def _create_project_keeping_batch(original: Any) -> Any:
    if getattr(original, "_imgbuild_extended", False):
        return original

    def create_project(self: Any) -> Any:
        result = original(self)
        meta = self.codebuild_backend.codebuild_projects[self._get_param("name")].project_metadata
        for key in _EXTRA_PROJECT_FIELDS:
            if self._get_param(key) is not None:
                meta[key] = self._get_param(key)
        return result

    create_project._imgbuild_extended = True  # type: ignore[attr-defined]
    return create_project


def _project_meta(self: Any, name: str) -> dict[str, Any]:
    from moto.codebuild.exceptions import ResourceNotFoundException

    project = self.codebuild_backend.codebuild_projects.get(name)
    if project is None:
        raise ResourceNotFoundException(f"Project {name} not found")
    meta: dict[str, Any] = project.project_metadata
    return meta


def _update_project(self: Any) -> Any:
    from moto.codebuild.responses import _validate_required_params_environment
    from moto.core.responses import ActionResult
    from moto.core.utils import unix_time

    meta = _project_meta(self, self._get_param("name"))
    if self._get_param("environment") is not None:
        _validate_required_params_environment(self._get_param("environment"))
    for key in _UPDATABLE:
        value = self._get_param(key)
        if value is not None:
            meta[key] = value
    meta["lastModifiedDate"] = unix_time()
    return ActionResult({"project": meta})


def _webhook_body(self: Any, existing: dict[str, Any] | None) -> dict[str, Any]:
    name = self._get_param("projectName")
    hook = dict(existing or {})
    hook.setdefault(
        "url", f"https://api.github.com/repos/example/{name}/hooks/{uuid.uuid4().int % 10**8}"
    )
    hook.setdefault(
        "payloadUrl", f"https://codebuild.{self.region}.amazonaws.com/webhooks?t={uuid.uuid4().hex}"
    )
    for key in (
        "branchFilter",
        "filterGroups",
        "buildType",
        "manualCreation",
        "scopeConfiguration",
    ):
        if self._get_param(key) is not None:
            hook[key] = self._get_param(key)
    hook.setdefault("buildType", "BUILD")
    from moto.core.utils import unix_time

    hook["lastModifiedSecret"] = unix_time()
    return hook


def _create_webhook(self: Any) -> Any:
    from moto.codebuild.exceptions import ResourceAlreadyExistsException
    from moto.core.responses import ActionResult

    meta = _project_meta(self, self._get_param("projectName"))
    if "webhook" in meta:
        raise ResourceAlreadyExistsException("A webhook already exists for this project")
    meta["webhook"] = _webhook_body(self, None)
    return ActionResult({"webhook": meta["webhook"]})


def _update_webhook(self: Any) -> Any:
    from moto.codebuild.exceptions import ResourceNotFoundException
    from moto.core.responses import ActionResult

    meta = _project_meta(self, self._get_param("projectName"))
    if "webhook" not in meta:
        raise ResourceNotFoundException("The project has no webhook")
    meta["webhook"] = _webhook_body(self, meta["webhook"])
    return ActionResult({"webhook": meta["webhook"]})


def _delete_webhook(self: Any) -> Any:
    from moto.core.responses import ActionResult

    _project_meta(self, self._get_param("projectName")).pop("webhook", None)
    return ActionResult({})


def _report_groups(self: Any) -> dict[str, dict[str, Any]]:
    """Stored on the backend object, so moto's reset wipes them with everything else."""
    groups: dict[str, dict[str, Any]] = self.codebuild_backend.__dict__.setdefault(
        "_imgbuild_report_groups", {}
    )
    return groups


def _create_report_group(self: Any) -> Any:
    from moto.codebuild.exceptions import ResourceAlreadyExistsException
    from moto.core.responses import ActionResult
    from moto.core.utils import unix_time

    name = self._get_param("name")
    arn = f"arn:aws:codebuild:{self.region}:{self.current_account}:report-group/{name}"
    groups = _report_groups(self)
    if arn in groups:
        raise ResourceAlreadyExistsException(f"Report group {arn} already exists")
    now = unix_time()
    groups[arn] = {
        "arn": arn,
        "name": name,
        "type": self._get_param("type"),
        "exportConfig": self._get_param("exportConfig"),
        "created": now,
        "lastModified": now,
        "tags": self._get_param("tags") or [],
        "status": "ACTIVE",
    }
    return ActionResult({"reportGroup": groups[arn]})


def _update_report_group(self: Any) -> Any:
    from moto.codebuild.exceptions import ResourceNotFoundException
    from moto.core.responses import ActionResult
    from moto.core.utils import unix_time

    group = _report_groups(self).get(self._get_param("arn"))
    if group is None:
        raise ResourceNotFoundException(f"Report group {self._get_param('arn')} not found")
    for key in ("exportConfig", "tags"):
        if self._get_param(key) is not None:
            group[key] = self._get_param(key)
    group["lastModified"] = unix_time()
    return ActionResult({"reportGroup": group})


def _batch_get_report_groups(self: Any) -> Any:
    from moto.core.responses import ActionResult

    groups = _report_groups(self)
    arns = self._get_param("reportGroupArns") or []
    return ActionResult(
        {
            "reportGroups": [groups[a] for a in arns if a in groups],
            "reportGroupsNotFound": [a for a in arns if a not in groups],
        }
    )


def _list_report_groups(self: Any) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"reportGroups": sorted(_report_groups(self))})


def _delete_report_group(self: Any) -> Any:
    from moto.core.responses import ActionResult

    _report_groups(self).pop(self._get_param("arn"), None)
    return ActionResult({})


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 and a free port, extended for CodeBuild; yields its URL."""
    _check_version()
    from moto.server import ThreadedMotoServer

    _record_calls()
    _extend_codebuild()
    _extend_ecr()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fresh moto state; boto3 here and in child processes talks to moto in REGION."""
    request = urllib.request.Request(moto_server + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    _calls.clear()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return moto_server


@pytest.fixture
def moto_calls(aws_env: str) -> list[tuple[str, str]]:
    """(service, operation) of every request moto answered since this test's reset."""
    return _calls


@pytest.fixture
def iam_caller(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """`iam_caller(deny=["ecr:PutAccountSetting"])`: from then on this test's AWS calls (and its
    child processes') are an IAM user's that may do anything but `deny`, as moto's IAM
    enforcement judges it; returns the user's ARN. Enforcement ends with the test."""
    import boto3
    from moto.core.authorization import enable_iam_authentication

    with ExitStack() as stack:

        def use(*, deny: Sequence[str] = (), name: str = "imgbuild-ci") -> str:
            iam = boto3.client("iam", region_name=REGION)
            arn = str(iam.create_user(UserName=name)["User"]["Arn"])
            key = iam.create_access_key(UserName=name)["AccessKey"]
            statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
            if deny:
                statements.append({"Effect": "Deny", "Action": list(deny), "Resource": "*"})
            iam.put_user_policy(
                UserName=name,
                PolicyName="imgbuild-test",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
            # boto3's default session keeps the credentials it first read: start a new one.
            monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
            stack.enter_context(enable_iam_authentication())
            return arn

        yield use
