"""`verify.services`: the databases and caches a verify run starts beside the app.

A service's kind (postgres, mysql, redis, memcached) comes from its image name unless given; it
sets the port, the readiness check and the variable the app gets (DATABASE_URL, REDIS_URL, ...),
with the official images' environment (POSTGRES_USER, POSTGRES_PASSWORD, ...) in the URL.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buildkit.config import schema
from buildkit.config.yamlsrc import Document
from buildkit.engine import reference
from buildkit.errors import ConfigError

SERVICE_KEYS = ("image", "kind", "env", "port", "url", "url_env", "command", "ready")
READY_KEYS = ("command", "tcp", "timeout")
DEFAULT_TIMEOUT = 60.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_mapping(doc: Document, key: str, raw: Any) -> dict[str, str]:
    env = schema.str_mapping(doc, key, raw or {})
    for name in env:
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{doc.where(key)}: '{name}' in '{key}' is not a variable name")
    return env


def seconds(doc: Document, key: str, raw: Any, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= 86400:
        raise ConfigError(
            f"{doc.where(key)}: '{key}' must be a number of seconds above 0 and at most 86400, "
            f"not {raw!r}"
        )
    return float(raw)


@dataclass(frozen=True, kw_only=True)
class Kind:
    """What imgbuild knows about a well-known service image."""

    port: int
    url_env: str
    url: str  # placeholders: {host} {port} {user} {password} {db}
    ready: tuple[str, ...] | None  # run inside the service container; None: TCP from the network
    user_env: str = ""
    default_user: str = ""
    password_env: str = ""
    db_env: str = ""
    #: Where the default user's password is when user_env is not set (MySQL's root).
    default_user_password_env: str = ""
    #: The database when db_env is not set: the user's name (PostgreSQL) or none (MySQL).
    db_defaults_to_user: bool = True


KINDS: dict[str, Kind] = {
    "postgres": Kind(
        port=5432,
        url_env="DATABASE_URL",
        url="postgres://{user}:{password}@{host}:{port}/{db}",
        ready=("pg_isready", "-h", "127.0.0.1", "-p", "{port}", "-U", "{user}"),
        user_env="POSTGRES_USER",
        default_user="postgres",
        password_env="POSTGRES_PASSWORD",
        db_env="POSTGRES_DB",
    ),
    "mysql": Kind(
        port=3306,
        url_env="DATABASE_URL",
        url="mysql2://{user}:{password}@{host}:{port}/{db}",
        ready=("mysqladmin", "ping", "-h", "127.0.0.1", "--silent"),
        user_env="MYSQL_USER",
        default_user="root",
        password_env="MYSQL_PASSWORD",
        db_env="MYSQL_DATABASE",
        default_user_password_env="MYSQL_ROOT_PASSWORD",
        db_defaults_to_user=False,
    ),
    "redis": Kind(
        port=6379,
        url_env="REDIS_URL",
        url="redis://{host}:{port}/0",
        ready=("redis-cli", "-h", "127.0.0.1", "-p", "{port}", "ping"),
    ),
    "memcached": Kind(port=11211, url_env="MEMCACHE_SERVERS", url="{host}:{port}", ready=None),
}
#: Image names that mean a known kind (the last path component, without tag).
_KIND_ALIASES = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "postgis": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "redis": "redis",
    "valkey": "redis",
    "memcached": "memcached",
}
_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


@dataclass(frozen=True, kw_only=True)
class Readiness:
    command: tuple[str, ...] | None  # exec'd in the service container; exit 0 = ready
    tcp: bool  # else: connect to the service's port from a probe on the network
    timeout: float


@dataclass(frozen=True, kw_only=True)
class Service:
    name: str  # also its host name on the run's network
    image: str
    kind: str | None
    env: Mapping[str, str]
    port: int | None
    url: str | None  # the resolved address, injected as url_env (None: nothing injected)
    url_env: str | None
    command: tuple[str, ...] | None
    ready: Readiness


def parse(doc: Document, raw: Any) -> tuple[Service, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{doc.where('verify.services')}: 'verify.services' must map a service name to its "
            "settings, e.g. db: {image: postgres:16}"
        )
    return tuple(_service(doc, str(name), body) for name, body in raw.items())


def _service(doc: Document, name: str, raw: Any) -> Service:
    key = f"verify.services.{name}"
    raw = _service_mapping(doc, key, name, raw)
    image = schema.image_ref(doc, f"{key}.image", raw["image"])
    kind = _kind(doc, key, raw.get("kind"), image)
    known = KINDS.get(kind) if kind else None
    env = env_mapping(doc, f"{key}.env", raw.get("env"))
    raw_port = raw.get("port")  # absent or null: the kind's own
    port = (
        (known.port if known else None) if raw_port is None else _port(doc, f"{key}.port", raw_port)
    )
    url_env, url = _address(doc, key, raw, name, port, env, known)
    command = raw.get("command")
    if command is not None:
        command = (
            tuple(shlex.split(command))
            if isinstance(command, str)
            else tuple(schema.str_list(doc, f"{key}.command", command))
        )
    return Service(
        name=name,
        image=image,
        kind=kind,
        env=env,
        port=port,
        url=url,
        url_env=url_env,
        command=command,
        ready=_ready(doc, key, raw.get("ready"), known, port, env),
    )


def _service_mapping(doc: Document, key: str, name: str, raw: Any) -> dict[str, Any]:
    """The service's settings (a bare string is its image), with its keys checked."""
    where = doc.where(key)
    if not _SERVICE_NAME.match(name):
        raise ConfigError(
            f"{where}: service name '{name}' must be lowercase letters, digits and - (it is the "
            "service's host name)"
        )
    if isinstance(raw, str):
        raw = {"image": raw}
    for sub in raw if isinstance(raw, dict) else ():
        if sub not in SERVICE_KEYS:
            raise ConfigError(f"{doc.where(f'{key}.{sub}')}: unknown key '{key}.{sub}'{_hint(sub)}")
    if not isinstance(raw, dict) or "image" not in raw:
        raise ConfigError(f"{where}: '{key}' needs an image, e.g. {{image: postgres:16}}")
    return raw


def _address(
    doc: Document,
    key: str,
    raw: Mapping[str, Any],
    name: str,
    port: int | None,
    env: Mapping[str, str],
    known: Kind | None,
) -> tuple[str | None, str | None]:
    """(variable, URL) the app gets for this service; (None, None) when there is nothing to say."""
    url_env = raw.get("url_env", known.url_env if known else None)
    if url_env is not None:
        url_env = schema.env_names(doc, f"{key}.url_env", [url_env])[0]
    template = raw.get("url")
    if template is None:
        template = known.url if known else None
    else:
        template = schema.nonempty_str(doc, f"{key}.url", template)
    if template is None:
        return url_env, None
    if url_env is None:
        url_env = f"{name.upper().replace('-', '_')}_URL"
    return url_env, _url(doc, f"{key}.url", template, name, port, env, known)


def _hint(sub: str) -> str:
    close = difflib.get_close_matches(sub, SERVICE_KEYS, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(SERVICE_KEYS)}"


def _kind(doc: Document, key: str, raw: Any, image: str) -> str | None:
    if raw is not None:
        kind = schema.nonempty_str(doc, f"{key}.kind", raw)
        if kind not in KINDS:
            raise ConfigError(
                f"{doc.where(f'{key}.kind')}: '{key}.kind' {kind!r} is not one of "
                f"{', '.join(KINDS)}; leave it out and set port, url and ready yourself"
            )
        return kind
    last = reference.normalize(image).path.rsplit("/", 1)[-1]  # postgres of postgres:16
    return _KIND_ALIASES.get(last)


def _port(doc: Document, key: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 65536:
        raise ConfigError(f"{doc.where(key)}: '{key}' must be a port number 1-65535, not {raw!r}")
    return raw


def _fields(
    name: str, port: int | None, env: Mapping[str, str], kind: Kind | None
) -> dict[str, str]:
    fields = {"host": name, "port": str(port or ""), "user": "", "password": "", "db": ""}
    if kind is None or not kind.user_env:
        return fields
    own_user = env.get(kind.user_env)
    fields["user"] = own_user or kind.default_user
    # The official images: POSTGRES_PASSWORD is the default user's; MYSQL_PASSWORD is
    # MYSQL_USER's, and root's is MYSQL_ROOT_PASSWORD.
    password_env = (
        kind.password_env if own_user else (kind.default_user_password_env or kind.password_env)
    )
    fields["password"] = env.get(password_env, "")
    fallback_db = fields["user"] if kind.db_defaults_to_user else ""
    fields["db"] = env.get(kind.db_env, fallback_db)
    return fields


def _url(
    doc: Document,
    key: str,
    template: str,
    name: str,
    port: int | None,
    env: Mapping[str, str],
    kind: Kind | None,
) -> str:
    from urllib.parse import quote

    fields = _fields(name, port, env, kind)
    quoted = {k: quote(v, safe="") if k != "host" else v for k, v in fields.items()}
    try:
        return template.format(**quoted)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{doc.where(key)}: '{key}' has an unknown placeholder ({exc}); use {{host}} "
            "{port} {user} {password} {db}"
        ) from None


def _ready(
    doc: Document,
    key: str,
    raw: Any,
    kind: Kind | None,
    port: int | None,
    env: Mapping[str, str],
) -> Readiness:
    raw = raw or {}
    rkey = f"{key}.ready"
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{doc.where(rkey)}: '{rkey}' must be {{command: ...}} or {{tcp: true}} (+ timeout)"
        )
    for sub in raw:
        if sub not in READY_KEYS:
            raise ConfigError(
                f"{doc.where(f'{rkey}.{sub}')}: unknown key '{rkey}.{sub}'; known keys: "
                f"{', '.join(READY_KEYS)}"
            )
    timeout = seconds(doc, f"{rkey}.timeout", raw.get("timeout"), DEFAULT_TIMEOUT)
    if "command" in raw:
        cmd = raw["command"]
        command = (
            tuple(shlex.split(cmd))
            if isinstance(cmd, str)
            else tuple(schema.str_list(doc, f"{rkey}.command", cmd))
        )
        return Readiness(command=command, tcp=False, timeout=timeout)
    if schema.boolean(doc, f"{rkey}.tcp", raw.get("tcp", False)) or kind is None or not kind.ready:
        if port is None:
            raise ConfigError(
                f"{doc.where(key)}: '{key}' needs a port (or ready.command) so imgbuild can tell "
                "when it is ready"
            )
        return Readiness(command=None, tcp=True, timeout=timeout)
    fields = _fields("", port, env, kind)
    return Readiness(
        command=tuple(part.format(**fields) for part in kind.ready), tcp=False, timeout=timeout
    )
