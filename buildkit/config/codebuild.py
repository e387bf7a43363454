"""`codebuild:` — CodeBuild projects, webhooks, report groups and generated buildspecs.

    codebuild:
      project: hello                      # prefix: hello-pr, hello-main, hello-batch
      github: https://github.com/acme/hello
      image: aws/codebuild/standard:7.0
      compute_type: BUILD_GENERAL1_MEDIUM
      env:
        RAILS_ENV: production                      # PLAINTEXT
        BUNDLE_TOKEN: {secrets_manager: ci/bundle:token}
        API_URL: {parameter_store: /ci/api-url}
      create_role: true                   # or service_role: arn:aws:iam::…:role/…
      file_paths: ["^app/", "^Gemfile"]   # webhooks fire only when these change

Every key is optional; docs/codebuild.md describes each one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit.config import schema
from buildkit.config.yamlsrc import Document
from buildkit.errors import ConfigError

KEYS: dict[str, Any] = {
    "project": None,
    "github": None,
    "region": None,
    "image": None,
    "environment_type": None,
    "compute_type": None,
    "privileged": None,
    "env": None,  # NAME: value | {plaintext|parameter_store|secrets_manager: value}
    "timeout_minutes": None,
    "queued_timeout_minutes": None,
    "service_role": None,
    "create_role": None,
    "logs_group": None,
    "branch": None,
    "file_paths": None,
    "report_group": None,
    "batch": None,
    "install": None,
    "buildspec_dir": None,
    "tags": None,
}

COMPUTE_TYPES = (
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
)
ENVIRONMENT_TYPES = ("LINUX_CONTAINER", "ARM_CONTAINER")
ENV_TYPES = {
    "plaintext": "PLAINTEXT",
    "parameter_store": "PARAMETER_STORE",
    "secrets_manager": "SECRETS_MANAGER",
}
DEFAULT_IMAGE = "aws/codebuild/standard:7.0"
DEFAULT_INSTALL = "pip install imgbuild"

_PROJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,140}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_LOG_GROUP = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
_REPORT_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_GITHUB = re.compile(r"^https://[\w.-]+(?::\d+)?/[\w.-]+/[\w.-]+?(?:\.git)?/?$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
_BRANCH = re.compile(r"^(?!/)(?!.*//)(?!.*\.\.)[\w./-]+(?<![/.])$")
_RESERVED_ENV = ("CODEBUILD_", "AWS_")


@dataclass(frozen=True, kw_only=True)
class EnvVar:
    """One project environment variable; `value` is a parameter/secret name unless PLAINTEXT."""

    name: str
    value: str
    type: str = "PLAINTEXT"


@dataclass(frozen=True, kw_only=True)
class CodeBuildSettings:
    enabled: bool = False  # the section is present
    project: str = "imgbuild"
    github: str | None = None
    region: str | None = None
    image: str = DEFAULT_IMAGE
    environment_type: str = "LINUX_CONTAINER"
    compute_type: str = "BUILD_GENERAL1_MEDIUM"
    privileged: bool = True
    env: tuple[EnvVar, ...] = ()
    timeout_minutes: int = 60
    queued_timeout_minutes: int = 480
    service_role: str | None = None
    create_role: bool = False
    logs_group: str | None = None
    branch: str = "main"
    file_paths: tuple[str, ...] = ()
    report_group: str = "size"
    batch: bool = False
    install: tuple[str, ...] = (DEFAULT_INSTALL,)
    buildspec_dir: str = "buildspecs"
    tags: Mapping[str, str] = field(default_factory=dict)


def parse(doc: Document, raw: Any, root: Path) -> CodeBuildSettings:  # noqa: ARG001
    default_project = _default_project(doc)
    if raw is None:
        return CodeBuildSettings(project=default_project)
    if not isinstance(raw, dict):
        raise ConfigError(f"{doc.where('codebuild')}: 'codebuild' must be a mapping of keys")
    settings = CodeBuildSettings(
        enabled=True,
        project=_match(
            doc, "project", raw.get("project", default_project), _PROJECT, _PROJECT_HINT
        ),
        github=_github(doc, raw.get("github")),
        region=_optional_match(doc, "region", raw.get("region"), _REGION, "like eu-west-1"),
        image=schema.nonempty_str(doc, "codebuild.image", raw.get("image", DEFAULT_IMAGE)),
        environment_type=_choice(
            doc,
            "environment_type",
            raw.get("environment_type", "LINUX_CONTAINER"),
            ENVIRONMENT_TYPES,
        ),
        compute_type=_choice(
            doc, "compute_type", raw.get("compute_type", "BUILD_GENERAL1_MEDIUM"), COMPUTE_TYPES
        ),
        privileged=schema.boolean(doc, "codebuild.privileged", raw.get("privileged", True)),
        env=_env(doc, raw.get("env", {})),
        timeout_minutes=_minutes(doc, "timeout_minutes", raw.get("timeout_minutes", 60), 2160),
        queued_timeout_minutes=_minutes(
            doc, "queued_timeout_minutes", raw.get("queued_timeout_minutes", 480), 480
        ),
        service_role=_optional_match(
            doc, "service_role", raw.get("service_role"), _ROLE_ARN, "a role ARN"
        ),
        create_role=schema.boolean(doc, "codebuild.create_role", raw.get("create_role", False)),
        logs_group=_optional_match(
            doc, "logs_group", raw.get("logs_group"), _LOG_GROUP, "a CloudWatch Logs group name"
        ),
        branch=_match(doc, "branch", raw.get("branch", "main"), _BRANCH, "a git branch name"),
        file_paths=_file_paths(doc, raw.get("file_paths", [])),
        report_group=_match(
            doc, "report_group", raw.get("report_group", "size"), _REPORT_GROUP, _GROUP_HINT
        ),
        batch=schema.boolean(doc, "codebuild.batch", raw.get("batch", False)),
        install=_install(doc, raw.get("install", DEFAULT_INSTALL)),
        buildspec_dir=schema.relative_name(
            doc, "codebuild.buildspec_dir", raw.get("buildspec_dir", "buildspecs")
        ),
        tags=schema.str_mapping(doc, "codebuild.tags", raw.get("tags", {})),
    )
    _check_role(doc, settings)
    return settings


_PROJECT_HINT = "letters, digits, - and _, starting with a letter (e.g. 'myapp')"
_GROUP_HINT = "letters, digits, - and _ (e.g. 'size')"


def _default_project(doc: Document) -> str:
    name = str(doc.data.get("name") or doc.path.parent.name)
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    return cleaned if _PROJECT.match(cleaned) else f"imgbuild-{cleaned}".rstrip("-")


def _match(doc: Document, key: str, value: Any, pattern: re.Pattern[str], hint: str) -> str:
    text = schema.nonempty_str(doc, f"codebuild.{key}", value)
    if not pattern.match(text):
        raise ConfigError(
            f"{doc.where(f'codebuild.{key}')}: codebuild.{key} '{text}' must be {hint}"
        )
    return text


def _optional_match(
    doc: Document, key: str, value: Any, pattern: re.Pattern[str], hint: str
) -> str | None:
    return None if value is None else _match(doc, key, value, pattern, hint)


def _choice(doc: Document, key: str, value: Any, choices: tuple[str, ...]) -> str:
    text = schema.nonempty_str(doc, f"codebuild.{key}", value)
    if text.upper() in choices:
        return text.upper()
    raise ConfigError(
        f"{doc.where(f'codebuild.{key}')}: codebuild.{key} '{text}' must be one of "
        f"{', '.join(choices)}"
    )


def _github(doc: Document, value: Any) -> str | None:
    if value is None:
        return None
    url = schema.nonempty_str(doc, "codebuild.github", value)
    if not _GITHUB.match(url):
        raise ConfigError(
            f"{doc.where('codebuild.github')}: codebuild.github '{url}' must be the repository's "
            "https URL, like https://github.com/acme/shop"
        )
    if "@" in url:
        raise ConfigError(f"{doc.where('codebuild.github')}: put no credentials in the URL")
    return url


def _env(doc: Document, value: Any) -> tuple[EnvVar, ...]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{doc.where('codebuild.env')}: codebuild.env must be a mapping of NAME: value"
        )
    return tuple(_env_var(doc, str(name), item) for name, item in value.items())


def _env_var(doc: Document, name: str, item: Any) -> EnvVar:
    key = f"codebuild.env.{name}"
    if not _ENV_NAME.match(name) or name.startswith(_RESERVED_ENV):
        raise ConfigError(
            f"{doc.where(key)}: '{name}' is not a usable variable name (letters, digits, _; "
            "CODEBUILD_* and AWS_* are reserved)"
        )
    if not isinstance(item, dict):
        return EnvVar(name=name, value=schema.str_mapping(doc, key, {name: item})[name])
    if len(item) != 1 or next(iter(item)) not in ENV_TYPES:
        raise ConfigError(
            f"{doc.where(key)}: {key} must be a value or one of "
            "{plaintext: …}, {parameter_store: NAME}, {secrets_manager: NAME[:json-key]}"
        )
    kind, inner = next(iter(item.items()))
    text = schema.nonempty_str(doc, key, inner)
    return EnvVar(name=name, value=text, type=ENV_TYPES[kind])


def _minutes(doc: Document, key: str, value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 5 <= value <= maximum:
        raise ConfigError(
            f"{doc.where(f'codebuild.{key}')}: codebuild.{key} must be whole minutes from 5 "
            f"to {maximum}, not {value!r}"
        )
    return value


def _file_paths(doc: Document, value: Any) -> tuple[str, ...]:
    patterns = (
        (value,) if isinstance(value, str) else schema.str_list(doc, "codebuild.file_paths", value)
    )
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{doc.where('codebuild.file_paths')}: '{pattern}' is not a regular expression "
                f"({exc}); webhooks match FILE_PATH with regexes like ^app/"
            ) from None
    return tuple(patterns)


def _install(doc: Document, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(
            f"{doc.where('codebuild.install')}: codebuild.install must be a shell command "
            "or a list of them (e.g. pip install imgbuild)"
        )
    commands = tuple(schema.nonempty_str(doc, "codebuild.install", v) for v in items)
    if any(not c.strip() for c in commands):
        raise ConfigError(
            f"{doc.where('codebuild.install')}: codebuild.install has an empty command"
        )
    return commands


def _check_role(doc: Document, settings: CodeBuildSettings) -> None:
    if settings.create_role and settings.service_role:
        raise ConfigError(
            f"{doc.where('codebuild.service_role')}: set either codebuild.service_role or "
            "codebuild.create_role: true, not both"
        )
