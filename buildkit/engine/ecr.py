"""Amazon ECR: which registry, its auth token, and the repositories imgbuild pushes to.

Works with plain boto3 credentials (a laptop's profile, CodeBuild's container credentials) and
honours AWS_ENDPOINT_URL. Tokens are kept in memory only, refreshed shortly before `expiresAt` or
when the registry answers 401, and registered for redaction: they never reach argv or logs.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from buildkit import log, proc
from buildkit.engine import reference
from buildkit.engine.credentials import Auth
from buildkit.errors import AwsError

#: Tests only: the registry data plane for the ECR host (moto has no /v2/ API). Never needed on AWS.
ENDPOINT_OVERRIDE_ENV = "IMGBUILD_ECR_ENDPOINT"
_REFRESH_MARGIN = datetime.timedelta(minutes=5)
T = TypeVar("T")


@dataclass(frozen=True)
class EcrRegistry:
    account: str
    region: str
    host: str  # <account>.dkr.ecr.<region>.amazonaws.com or another of its endpoints
    data_plane: str  # where image references point (= host, unless overridden for tests)


def _transient(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError

    if isinstance(exc, (EndpointConnectionError, ConnectionError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in ("ThrottlingException", "ServiceUnavailableException") or status >= 500
    return False


def _log_retry(state: Any) -> None:
    log.warn(f"AWS call failed ({state.outcome.exception()}); retrying")


def call(what: str, function: Callable[..., T], **kwargs: Any) -> T:
    """One AWS API call, retried with backoff when transient; failures become AwsError."""
    return _call(what, function, (), kwargs)  # type: ignore[return-value]


def call_allowing(
    what: str, function: Callable[..., T], allowed: tuple[str, ...], **kwargs: Any
) -> T | None:
    """Like call, but None when the API answers one of the `allowed` error codes."""
    return _call(what, function, allowed, kwargs)


@dataclass(frozen=True)
class Refusal:
    """An AWS API's error answer, for a caller that carries on without the call."""

    code: str
    message: str
    status: int  # HTTP status; 0 when botocore saw none

    @property
    def denied(self) -> bool:
        """The caller's identity may not make the call (IAM, an SCP, a permissions boundary)."""
        return self.code in ("AccessDeniedException", "AccessDenied") or self.status == 403

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def call_or_refusal(what: str, function: Callable[..., T], **kwargs: Any) -> T | Refusal:
    """Like call, but the API's error answer (after transient ones were retried) is returned,
    not raised: for optional steps that warn and go on. Unreachable endpoints still raise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _attempt(function, kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return Refusal(str(error.get("Code", "")), str(error.get("Message", "")), int(status))
    except BotoCoreError as exc:
        raise AwsError(f"{what}: {exc}; check AWS credentials, region and network") from None


def _attempt(function: Callable[..., T], kwargs: dict[str, Any]) -> T:
    from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

    @retry(
        retry=retry_if_exception(_transient),
        stop=stop_after_delay(5),  # with 3 s connect timeouts: a dead endpoint fails in < 10 s
        wait=wait_exponential(multiplier=0.3, max=2),
        before_sleep=_log_retry,
        reraise=True,
    )
    def attempt() -> T:
        return function(**kwargs)

    return attempt()


def _call(
    what: str, function: Callable[..., T], allowed: tuple[str, ...], kwargs: dict[str, Any]
) -> T | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _attempt(function, kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in allowed:
            return None
        raise AwsError(f"{what}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise AwsError(f"{what}: {exc}; check AWS credentials, region and network") from None


def client(service: str, region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    # botocore's own retries would stack with ours and stretch "endpoint down" past 10 s.
    config = BotoConfig(
        retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=20
    )
    factory: Any = boto3.client  # a plain str service name; the stubs want a Literal
    return factory(service, region_name=region, config=config)


def resolve(registry: str) -> EcrRegistry | None:
    """The ECR registry for `ecr` or an ECR host name (any of ECR's endpoints: FIPS,
    dual-stack); None for any other registry."""
    if registry == "ecr":
        import boto3

        region = boto3.session.Session().region_name or os.environ.get("AWS_REGION")
        if not region:
            raise AwsError("registry: ecr needs an AWS region; set AWS_REGION or a profile region")
        identity = call("sts get-caller-identity", client("sts", region).get_caller_identity)
        account = str(identity["Account"])
        host = reference.ecr_host(account, region)
    else:
        parsed = reference.parse_ecr_host(registry)
        if parsed is None:
            return None
        account, region = parsed.account, parsed.region
        host = registry
    return EcrRegistry(account, region, host, os.environ.get(ENDPOINT_OVERRIDE_ENV) or host)


class TokenProvider:
    """GetAuthorizationToken, kept until shortly before it expires (or until a 401)."""

    def __init__(self, registry: EcrRegistry) -> None:
        self.registry = registry
        self._auth: Auth | None = None
        self._expires: datetime.datetime | None = None

    def __call__(self, *, force: bool = False) -> Auth:
        now = datetime.datetime.now(datetime.UTC)
        if not force and self._auth and self._expires and now < self._expires - _REFRESH_MARGIN:
            return self._auth
        ecr = client("ecr", self.registry.region)
        data = call(
            f"ecr get-authorization-token ({self.registry.host})",
            ecr.get_authorization_token,
            registryIds=[self.registry.account],
        )["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        proc.register_secret(password)
        proc.register_secret(data["authorizationToken"])
        self._auth = Auth(user, password)
        self._expires = data.get("expiresAt")
        log.debug(f"ECR token for {self.registry.host} valid until {self._expires}")
        return self._auth


def mutability_exclusions(release_branches: tuple[str, ...]) -> list[dict[str, str]]:
    """Moving tags stay mutable; content-key and commit tags are immutable."""
    patterns = ["latest", *release_branches, "branch-*", "pr-*"]
    return [{"filterType": "WILDCARD", "filter": p} for p in dict.fromkeys(patterns)][:5]


def lifecycle_policy(keep: int, untagged_days: int, release_branches: tuple[str, ...]) -> str:
    """Keep moving tags; keep the last `keep` content-key images; expire untagged ones."""
    moving = list(dict.fromkeys(["latest", *release_branches, "branch-*", "pr-*"]))
    rules = [
        {
            "rulePriority": 1,
            "description": "never expire images that carry a moving tag",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": moving,
                "countType": "imageCountMoreThan",
                "countNumber": 10000,
            },
            "action": {"type": "expire"},
        },
        {
            # The artifacts imgbuild tags beside its images (chain.inputsref, reports.sizesref):
            # matched here, so they neither count against nor crowd out the images of rule 3.
            "rulePriority": 2,
            "description": f"keep the last {keep} imgbuild artifacts (inputs, layer sizes)",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*.inputs", "sha256-*.sizes"],
                "countType": "imageCountMoreThan",
                "countNumber": keep,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 3,
            "description": f"keep the last {keep} content-key images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*"],
                "countType": "imageCountMoreThan",
                "countNumber": keep,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 4,
            "description": f"expire untagged images after {untagged_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": untagged_days,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


def normalized_policy(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True)


def repository_arn(registry: EcrRegistry, name: str) -> str:
    return f"arn:aws:ecr:{registry.region}:{registry.account}:repository/{name}"


def tags_as_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
