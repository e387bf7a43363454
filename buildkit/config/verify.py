"""`verify:` — how `imgbuild verify` starts the app and runs its tests (docs/verify.md).

```yaml
verify:
  env: {RAILS_LOG_LEVEL: info}            # for the app (smoke) and the tests
  secrets:                                # values never in the file, the image or a log
    SECRET_KEY_BASE: {from_env: SECRET_KEY_BASE}
    RAILS_MASTER_KEY: {from_file: config/master.key}
  smoke:
    path: /up                      # default /up (/ without bin/rails); `tcp: true`: port only
    status: 200
    body: "ok"                            # a regular expression the body must contain
    timeout: 60
  services:
    db:    {image: postgres:16, env: {POSTGRES_PASSWORD: test}}
    cache: {image: redis:7}
  tests:
    command: bin/rails test
    junit: [test/reports]                 # dirs or files in /app collected after the run
    bundle_without: [development]         # the test variant's base (default: base's minus test)
    user: root                            # default; `image` runs them as the image's user
    timeout: 1800
```

The services' part lives in config/verify_services.py.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit.config import schema
from buildkit.config.verify_services import (
    DEFAULT_TIMEOUT,
    KINDS,
    READY_KEYS,
    SERVICE_KEYS,
    Kind,
    Readiness,
    Service,
    env_mapping,
    seconds,
)
from buildkit.config.verify_services import parse as parse_services
from buildkit.config.yamlsrc import Document
from buildkit.errors import ConfigError

__all__ = [
    "DEFAULT_TIMEOUT",
    "KINDS",
    "READY_KEYS",
    "SERVICE_KEYS",
    "Kind",
    "Readiness",
    "Secret",
    "Service",
    "Smoke",
    "Tests",
    "VerifySettings",
    "parse",
]

KEYS: dict[str, Any] = {
    "env": None,
    "secrets": None,
    "smoke": {"path": None, "tcp": None, "status": None, "body": None, "timeout": None},
    "services": None,  # names are the user's: checked here, per service
    "tests": {
        "command": None,
        "junit": None,
        "env": None,
        "bundle_without": None,
        "timeout": None,
        "user": None,
    },
}
DEFAULT_TEST_TIMEOUT = 1800.0
DEFAULT_JUNIT = ("tmp/test-results", "test/reports", "spec/reports")


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class Secret:
    """One secret for the containers: from imgbuild's environment or a file, read at run time."""

    name: str
    from_env: str | None = None
    from_file: Path | None = None
    where: str = ""  # file:line of its declaration, for errors


@dataclass(frozen=True, kw_only=True)
class Smoke:
    path: str | None  # None: TCP only
    status: int = 200
    body: str | None = None
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class Tests:
    command: str
    junit: tuple[str, ...] = DEFAULT_JUNIT
    env: Mapping[str, str] = field(default_factory=dict)
    bundle_without: tuple[str, ...] | None = None  # None: base.bundle_without minus "test"
    timeout: float = DEFAULT_TEST_TIMEOUT
    # Tests write where they like (coverage/, rspec's --out, test/reports): root by default;
    # "" (`user: image`) runs them as the image's own user (app), which may write only in
    # tmp/, log/ and storage/.
    user: str = "root"


@dataclass(frozen=True, kw_only=True)
class VerifySettings:
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[Secret, ...] = ()
    smoke: Smoke = field(default_factory=lambda: Smoke(path="/up"))
    services: tuple[Service, ...] = ()
    tests: Tests | None = None
    declared: bool = False  # the config has a verify: section (the buildspecs then verify)


def parse(
    doc: Document, raw: Any, root: Path, *, rails: bool = True, present: bool = False
) -> VerifySettings:
    """`rails`: the app has bin/rails, so the smoke check's default path is Rails' /up (else /).
    `present`: the file has the key, even bare (`verify:`), which asks for the defaults."""
    default_path = "/up" if rails else "/"
    if raw is None:
        return VerifySettings(smoke=Smoke(path=default_path), declared=present)
    if not isinstance(raw, dict):
        raise ConfigError(f"{doc.where('verify')}: 'verify' must be a mapping of keys")
    return VerifySettings(
        env=env_mapping(doc, "verify.env", raw.get("env")),
        secrets=_secrets(doc, raw.get("secrets"), root),
        smoke=_smoke(doc, raw.get("smoke") or {}, default_path),
        services=parse_services(doc, raw.get("services")),
        tests=_tests(doc, raw["tests"]) if raw.get("tests") is not None else None,
        declared=True,
    )


def _secrets(doc: Document, raw: Any, root: Path) -> tuple[Secret, ...]:
    key = "verify.secrets"
    if raw is None:
        return ()
    if isinstance(raw, list):  # shorthand: names passed through from the environment
        return tuple(
            Secret(name=_secret_name(doc, key, n), from_env=str(n), where=doc.where(key))
            for n in raw
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{doc.where(key)}: '{key}' must be a list of variable names or a mapping "
            "NAME: {from_env: VAR} | {from_file: PATH}"
        )
    secrets = []
    for name, source in raw.items():
        where = doc.where(f"{key}.{name}")
        if not _ENV_NAME.match(str(name)):
            raise ConfigError(f"{where}: '{name}' in '{key}' is not a variable name")
        if (
            not isinstance(source, dict)
            or len(source) != 1
            or not (set(source) <= {"from_env", "from_file"})
        ):
            raise ConfigError(
                f"{where}: '{key}.{name}' must be {{from_env: VAR}} or {{from_file: PATH}}; "
                "never write a secret's value in the config"
            )
        if "from_env" in source:
            var = _secret_name(doc, f"{key}.{name}.from_env", source["from_env"])
            secrets.append(Secret(name=str(name), from_env=var, where=where))
        else:
            path = schema.nonempty_str(doc, f"{key}.{name}.from_file", source["from_file"])
            resolved = schema.resolve_path(path, root)
            secrets.append(Secret(name=str(name), from_file=resolved, where=where))
    return tuple(secrets)


def _secret_name(doc: Document, key: str, value: Any) -> str:
    """A variable NAME; the text is never repeated in the error (it may be a pasted value)."""
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise ConfigError(
            f"{doc.where(key)}: an entry of '{key}' is not an environment variable name; give "
            "the NAME of a variable holding the secret, never its value"
        )
    return value


def _smoke(doc: Document, raw: Mapping[str, Any], default_path: str) -> Smoke:
    tcp = schema.boolean(doc, "verify.smoke.tcp", raw.get("tcp", False))
    path = (
        None
        if tcp
        else schema.nonempty_str(doc, "verify.smoke.path", raw.get("path", default_path))
    )
    if path is not None and not path.startswith("/"):
        raise ConfigError(
            f"{doc.where('verify.smoke.path')}: 'verify.smoke.path' must start with /"
        )
    status = raw.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigError(
            f"{doc.where('verify.smoke.status')}: 'verify.smoke.status' must be an HTTP status "
            f"like 200, not {status!r}"
        )
    body = schema.optional_str(doc, "verify.smoke.body", raw.get("body"))
    if body is not None:
        try:
            re.compile(body)
        except re.error as exc:
            raise ConfigError(
                f"{doc.where('verify.smoke.body')}: 'verify.smoke.body' is not a regular "
                f"expression ({exc})"
            ) from None
    timeout = seconds(doc, "verify.smoke.timeout", raw.get("timeout"), DEFAULT_TIMEOUT)
    return Smoke(path=path, status=status, body=body, timeout=timeout)


def _tests(doc: Document, raw: Any) -> Tests:
    if not isinstance(raw, dict):
        raise ConfigError(f"{doc.where('verify.tests')}: 'verify.tests' must be a mapping of keys")
    if "command" not in raw:
        raise ConfigError(
            f"{doc.where('verify.tests')}: verify.tests.command is required "
            "(e.g. bin/rails test or bundle exec rspec)"
        )
    command = raw["command"]
    if isinstance(command, list):
        command = shlex.join(schema.str_list(doc, "verify.tests.command", command))
    without = raw.get("bundle_without")
    return Tests(
        command=schema.nonempty_str(doc, "verify.tests.command", command),
        junit=schema.relative_paths(
            doc, "verify.tests.junit", raw.get("junit", list(DEFAULT_JUNIT))
        ),
        env=env_mapping(doc, "verify.tests.env", raw.get("env")),
        bundle_without=None
        if without is None
        else schema.str_list(doc, "verify.tests.bundle_without", without),
        timeout=seconds(doc, "verify.tests.timeout", raw.get("timeout"), DEFAULT_TEST_TIMEOUT),
        user=_test_user(doc, raw.get("user", "root")),
    )


def _test_user(doc: Document, raw: Any) -> str:
    """root, a user name or uid[:gid] the image knows; `image` = the image's own USER."""
    text = schema.nonempty_str(doc, "verify.tests.user", raw)
    if text == "image":
        return ""
    if not re.match(r"^(?:[a-z_][a-z0-9_-]{0,31}|\d+)(?::(?:[a-z_][a-z0-9_-]{0,31}|\d+))?$", text):
        raise ConfigError(
            f"{doc.where('verify.tests.user')}: 'verify.tests.user' must be root, image (the "
            f"image's own user), a user name or uid[:gid], not {text!r}"
        )
    return text
