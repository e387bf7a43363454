"""The `verify:` section of imgbuild.yaml (buildkit/config/verify.py) through `resolve`: defaults,
every key, service kinds, URLs and readiness checks, secrets, and one-line file:line errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from buildkit.config import loading as configmod
from buildkit.config.verify import (
    DEFAULT_JUNIT,
    Readiness,
    Secret,
    Service,
    Smoke,
    VerifySettings,
)
from buildkit.config.verify import Tests as VerifyTests  # not collected as a test class
from buildkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """\
name: shop
registry: 127.0.0.1:5000
ruby:
  version: "3.3.8"
"""
DIGEST = "sha256:" + "ab" * 32


def write(root: Path, section: str = "", *, rails: bool = False) -> Path:
    """imgbuild.yaml = MINIMAL + section (dedented) in root, with a Gemfile; bin/rails if asked."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "imgbuild.yaml"
    path.write_text(MINIMAL + textwrap.dedent(section))
    (root / "Gemfile").write_text("")
    if rails:
        (root / "bin").mkdir(exist_ok=True)
        (root / "bin" / "rails").write_text("#!/usr/bin/env ruby\n")
    return path


def verify_of(path: Path, env: dict[str, str] | None = None) -> VerifySettings:
    return configmod.resolve(path, env=env or {}).verify


def line_of(path: Path, needle: str) -> int:
    """The 1-based number of the first line of the file containing needle."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} is not in {path}")


def config_error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        configmod.resolve(path, env=env or {})
    assert info.value.exit_code == 3
    assert "\n" not in info.value.message
    return info.value


def assert_error_at(path: Path, needle: str, *fragments: str) -> str:
    """The config fails with a message at file:line of the line holding needle, with fragments."""
    message = config_error(path).message
    assert message.startswith(f"{path}:{line_of(path, needle)}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def only_service(path: Path, env: dict[str, str] | None = None) -> Service:
    services = verify_of(path, env).services
    assert len(services) == 1
    return services[0]


# --- the section as a whole ----------------------------------------------------------------------


def test_no_section_is_not_declared_and_checks_slash_without_bin_rails(tmp_path: Path) -> None:
    settings = verify_of(write(tmp_path))
    assert settings == VerifySettings(smoke=Smoke(path="/"))
    assert settings.declared is False
    assert settings.services == ()
    assert settings.secrets == ()
    assert settings.tests is None
    assert settings.smoke == Smoke(path="/", status=200, body=None, timeout=60.0)


def test_no_section_checks_rails_up_when_the_app_has_bin_rails(tmp_path: Path) -> None:
    settings = verify_of(write(tmp_path, rails=True))
    assert settings.declared is False
    assert settings.smoke.path == "/up"


def test_bin_rails_is_looked_for_in_the_app_context_not_the_config_dir(tmp_path: Path) -> None:
    path = write(tmp_path, "app:\n  context: web\n", rails=True)  # bin/rails beside the config
    (tmp_path / "web").mkdir()
    assert verify_of(path).smoke.path == "/"
    (tmp_path / "web" / "bin").mkdir()
    (tmp_path / "web" / "bin" / "rails").write_text("")
    assert verify_of(path).smoke.path == "/up"


def test_an_empty_mapping_declares_the_section_with_defaults(tmp_path: Path) -> None:
    settings = verify_of(write(tmp_path, "verify: {}\n", rails=True))
    assert settings.declared is True
    assert settings == VerifySettings(smoke=Smoke(path="/up"), declared=True)


def test_verify_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "verify: [smoke]\n")
    assert_error_at(path, "verify:", "'verify' must be a mapping of keys")


@pytest.mark.parametrize(
    ("section", "needle", "fragment"),
    [
        (
            "verify:\n  servcies: {}\n",
            "servcies",
            "unknown key 'verify.servcies'; did you mean 'services'?",
        ),
        (
            "verify:\n  smoke:\n    stauts: 200\n",
            "stauts",
            "unknown key 'verify.smoke.stauts'; did you mean 'status'?",
        ),
        (
            "verify:\n  tests:\n    comand: bin/rails test\n",
            "comand",
            "unknown key 'verify.tests.comand'; did you mean 'command'?",
        ),
        ("verify:\n  secret: [A]\n", "secret:", "did you mean 'secrets'?"),
    ],
)
def test_unknown_keys_under_verify_suggest_the_closest(
    tmp_path: Path, section: str, needle: str, fragment: str
) -> None:
    assert_error_at(write(tmp_path, section), needle, fragment)


def test_env_is_stringified_and_names_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          env: {RAILS_LOG_LEVEL: info, WEB_CONCURRENCY: 2, FEATURE_X: true}
        """,
    )
    assert verify_of(path).env == {
        "RAILS_LOG_LEVEL": "info",
        "WEB_CONCURRENCY": "2",
        "FEATURE_X": "true",
    }
    bad = write(tmp_path, "verify:\n  env: {1BAD: x}\n")
    assert_error_at(bad, "env:", "'1BAD' in 'verify.env' is not a variable name")
    nested = write(tmp_path, "verify:\n  env:\n    A: [1, 2]\n")
    assert_error_at(nested, "A: [1, 2]", "'verify.env.A' must be a string")


def test_values_may_come_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            db: {image: "${IMGBUILD_DEV_POSTGRES_IMAGE:-postgres:16}"}
        """,
    )
    assert only_service(path).image == "postgres:16"
    dev = {"IMGBUILD_DEV_POSTGRES_IMAGE": "127.0.0.1:5000/imgbuild-dev/postgres:15"}
    service = only_service(path, dev)
    assert service.image == "127.0.0.1:5000/imgbuild-dev/postgres:15"
    assert service.kind == "postgres"
    assert service.url == "postgres://postgres:@db:5432/postgres"


# --- smoke ---------------------------------------------------------------------------------------


def test_smoke_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          smoke:
            path: /healthz?full=1
            status: 204
            body: "ok|up"
            timeout: 5
        """,
        rails=True,
    )
    smoke = verify_of(path).smoke
    assert smoke == Smoke(path="/healthz?full=1", status=204, body="ok|up", timeout=5.0)
    assert isinstance(smoke.timeout, float)


def test_smoke_defaults_when_only_some_keys_are_given(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  smoke:\n    status: 301\n", rails=True)
    assert verify_of(path).smoke == Smoke(path="/up", status=301, body=None, timeout=60.0)


def test_smoke_tcp_checks_the_port_only(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  smoke: {tcp: true, timeout: 90}\n", rails=True)
    assert verify_of(path).smoke == Smoke(path=None, timeout=90.0)
    # tcp: true wins over a path; tcp: false keeps the HTTP check
    both = write(tmp_path, "verify:\n  smoke: {tcp: true, path: /health}\n")
    assert verify_of(both).smoke.path is None
    http = write(tmp_path, "verify:\n  smoke: {tcp: false, path: /health}\n")
    assert verify_of(http).smoke.path == "/health"


@pytest.mark.parametrize(
    ("smoke", "needle", "fragments"),
    [
        ("status: 99", "status:", ("'verify.smoke.status' must be an HTTP status", "not 99")),
        ("status: 600", "status:", ("'verify.smoke.status' must be an HTTP status",)),
        ('status: "200"', "status:", ("'verify.smoke.status' must be an HTTP status", "'200'")),
        ("status: true", "status:", ("'verify.smoke.status' must be an HTTP status",)),
        ('body: "([a-z"', "body:", ("'verify.smoke.body' is not a regular expression",)),
        ("path: up", "path:", ("'verify.smoke.path' must start with /",)),
        ('path: ""', "path:", ("'verify.smoke.path' must be a non-empty string",)),
        (
            "timeout: 0",
            "timeout:",
            ("'verify.smoke.timeout' must be a number of seconds above 0 and at most 86400",),
        ),
        (
            "timeout: 86401",
            "timeout:",
            ("'verify.smoke.timeout' must be a number of seconds", "86401"),
        ),
        ("timeout: -5", "timeout:", ("'verify.smoke.timeout' must be a number of seconds",)),
        ('timeout: "60"', "timeout:", ("'verify.smoke.timeout' must be a number of seconds",)),
        ("tcp: yes please", "tcp:", ("'verify.smoke.tcp' must be true or false",)),
    ],
)
def test_bad_smoke_values_name_file_line_and_key(
    tmp_path: Path, smoke: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path, f"verify:\n  smoke:\n    {smoke}\n")
    assert_error_at(path, needle, *fragments)


def test_smoke_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  smoke: /up\n")
    assert_error_at(path, "smoke:", "'verify.smoke' must be a mapping of keys")


# --- services: kinds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "kind", "port", "url_env"),
    [
        ("postgres:16", "postgres", 5432, "DATABASE_URL"),
        ("postgres", "postgres", 5432, "DATABASE_URL"),
        ("postgis/postgis:16-3.4", "postgres", 5432, "DATABASE_URL"),
        ("bitnami/postgresql:16", "postgres", 5432, "DATABASE_URL"),
        ("127.0.0.1:5000/imgbuild-dev/postgres:15", "postgres", 5432, "DATABASE_URL"),
        (f"postgres@{DIGEST}", "postgres", 5432, "DATABASE_URL"),
        (f"postgres:16@{DIGEST}", "postgres", 5432, "DATABASE_URL"),
        ("localhost:5000/postgres", "postgres", 5432, "DATABASE_URL"),
        ("mysql:8.4", "mysql", 3306, "DATABASE_URL"),
        ("mariadb:11", "mysql", 3306, "DATABASE_URL"),
        ("redis:7", "redis", 6379, "REDIS_URL"),
        ("valkey/valkey:8", "redis", 6379, "REDIS_URL"),
        (f"registry.example:5000/cache/redis@{DIGEST}", "redis", 6379, "REDIS_URL"),
        ("memcached:1.6-alpine", "memcached", 11211, "MEMCACHE_SERVERS"),
    ],
)
def test_kind_comes_from_the_image_name(
    tmp_path: Path, image: str, kind: str, port: int, url_env: str
) -> None:
    path = write(tmp_path, f"verify:\n  services:\n    svc:\n      image: '{image}'\n")
    service = only_service(path)
    assert service.image == image
    assert service.kind == kind
    assert service.port == port
    assert service.url_env == url_env
    assert service.url is not None
    assert service.url.startswith(("postgres://", "mysql2://", "redis://", "svc:"))


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/search:1",
        "localhost:5000/tools/redis-commander:latest",  # a name containing "redis" is not redis
        "postgres-exporter:1",
        "registry.example/postgres-backup@" + DIGEST,
    ],
)
def test_other_images_have_no_kind(tmp_path: Path, image: str) -> None:
    path = write(
        tmp_path, f"verify:\n  services:\n    svc:\n      image: '{image}'\n      port: 80\n"
    )
    service = only_service(path)
    assert service.kind is None
    assert service.url is None
    assert service.url_env is None
    assert service.ready == Readiness(command=None, tcp=True, timeout=60.0)


def test_explicit_kind_for_an_image_named_otherwise(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            db:
              image: ghcr.io/acme/pg:16
              kind: postgres
              env: {POSTGRES_PASSWORD: test}
        """,
    )
    service = only_service(path)
    assert service.kind == "postgres"
    assert service.port == 5432
    assert service.url_env == "DATABASE_URL"
    assert service.url == "postgres://postgres:test@db:5432/postgres"
    assert service.ready.command == (
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        "postgres",
    )


def test_unknown_kind_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    db:\n      image: x:1\n      kind: mongo\n")
    assert_error_at(
        path,
        "kind:",
        "'verify.services.db.kind' 'mongo' is not one of postgres, mysql, redis, memcached",
        "leave it out and set port, url and ready yourself",
    )


# --- services: URLs ------------------------------------------------------------------------------


def test_database_url_from_the_postgres_variables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            db:
              image: postgres:16
              env: {POSTGRES_USER: shop, POSTGRES_PASSWORD: secret, POSTGRES_DB: shop_test}
        """,
    )
    service = only_service(path)
    assert service.env == {
        "POSTGRES_USER": "shop",
        "POSTGRES_PASSWORD": "secret",
        "POSTGRES_DB": "shop_test",
    }
    assert service.url_env == "DATABASE_URL"
    assert service.url == "postgres://shop:secret@db:5432/shop_test"


def test_postgres_defaults_user_postgres_and_db_named_after_the_user(tmp_path: Path) -> None:
    bare = write(tmp_path, "verify:\n  services:\n    db: {image: postgres:16}\n")
    assert only_service(bare).url == "postgres://postgres:@db:5432/postgres"
    user = write(
        tmp_path, "verify:\n  services:\n    db: {image: postgres:16, env: {POSTGRES_USER: app}}\n"
    )
    assert only_service(user).url == "postgres://app:@db:5432/app"


def test_the_password_is_percent_quoted_in_the_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            db:
              image: postgres:16
              env: {POSTGRES_USER: "me@x", POSTGRES_PASSWORD: "p@ss:w/rd%?#", POSTGRES_DB: app}
        """,
    )
    service = only_service(path)
    assert service.url == "postgres://me%40x:p%40ss%3Aw%2Frd%25%3F%23@db:5432/app"
    assert service.env["POSTGRES_PASSWORD"] == "p@ss:w/rd%?#"  # the container gets it as is


def test_the_service_name_is_the_host_and_the_port_follows_an_override(tmp_path: Path) -> None:
    path = write(
        tmp_path, "verify:\n  services:\n    primary-db: {image: postgres:16, port: 6543}\n"
    )
    service = only_service(path)
    assert service.name == "primary-db"
    assert service.port == 6543
    assert service.url == "postgres://postgres:@primary-db:6543/postgres"
    assert service.ready.command == (
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-p",
        "6543",
        "-U",
        "postgres",
    )


def test_redis_mysql_and_memcached_urls(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            cache: {image: redis:7}
            db:
              image: mysql:8.4
              env: {MYSQL_USER: shop, MYSQL_PASSWORD: pw, MYSQL_DATABASE: shop_test}
            mc: memcached:1.6
        """,
    )
    cache, db, mc = verify_of(path).services
    assert (cache.url_env, cache.url) == ("REDIS_URL", "redis://cache:6379/0")
    assert (db.url_env, db.url) == ("DATABASE_URL", "mysql2://shop:pw@db:3306/shop_test")
    assert (mc.url_env, mc.url) == ("MEMCACHE_SERVERS", "mc:11211")


def test_custom_url_and_url_env(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            search:
              image: ghcr.io/acme/search:1
              port: 9200
              url: "http://{host}:{port}/"
              url_env: ELASTICSEARCH_URL
        """,
    )
    service = only_service(path)
    assert service.url == "http://search:9200/"
    assert service.url_env == "ELASTICSEARCH_URL"


def test_custom_url_without_url_env_is_injected_as_name_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            search-api: {image: ghcr.io/acme/search:1, port: 9200, url: "http://{host}:{port}"}
        """,
    )
    service = only_service(path)
    assert service.url_env == "SEARCH_API_URL"
    assert service.url == "http://search-api:9200"


def test_known_kind_with_another_variable_or_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            jobs: {image: redis:7, url_env: SIDEKIQ_REDIS_URL}
            cache: {image: redis:7, url: "redis://{host}:{port}/1"}
        """,
    )
    jobs, cache = verify_of(path).services
    assert (jobs.url_env, jobs.url) == ("SIDEKIQ_REDIS_URL", "redis://jobs:6379/0")
    assert (cache.url_env, cache.url) == ("REDIS_URL", "redis://cache:6379/1")


def test_unknown_url_placeholder_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "verify:\n  services:\n    db:\n      image: postgres:16\n      url: '{nope}'\n"
    )
    assert_error_at(
        path, "url:", "'verify.services.db.url' has an unknown placeholder", "{host} {port}"
    )


def test_attribute_placeholder_in_url_is_a_config_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "verify:\n  services:\n    db:\n      image: postgres\n      url: '{host.x}'\n"
    )
    assert_error_at(path, "url:", "'verify.services.db.url' has an unknown placeholder")


def test_bad_url_env_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    db: {image: redis:7, url_env: 1BAD}\n")
    assert_error_at(path, "url_env", "'1BAD' in 'verify.services.db.url_env' is not an environment")


# --- services: readiness -------------------------------------------------------------------------


def test_default_readiness_checks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            db: {image: postgres:16, env: {POSTGRES_USER: shop}}
            cache: {image: redis:7}
            mysql: {image: mariadb:11}
            mc: {image: memcached:1.6}
            search: {image: ghcr.io/acme/search:1, port: 9200}
        """,
    )
    db, cache, mysql, mc, search = verify_of(path).services
    assert db.ready == Readiness(
        command=("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "shop"),
        tcp=False,
        timeout=60.0,
    )
    assert cache.ready == Readiness(
        command=("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"), tcp=False, timeout=60.0
    )
    assert mysql.ready.command == ("mysqladmin", "ping", "-h", "127.0.0.1", "--silent")
    assert mc.ready == Readiness(command=None, tcp=True, timeout=60.0)
    assert search.ready == Readiness(command=None, tcp=True, timeout=60.0)


def test_unknown_kind_without_port_needs_a_readiness_check(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    worker:\n      image: ghcr.io/acme/w:1\n")
    assert_error_at(path, "worker:", "'verify.services.worker' needs a port (or ready.command)")
    ok = write(
        tmp_path,
        "verify:\n  services:\n    worker:\n      image: ghcr.io/acme/w:1\n"
        "      ready: {command: test -e /tmp/ready}\n",
    )
    worker = only_service(ok)
    assert worker.port is None
    assert worker.ready == Readiness(command=("test", "-e", "/tmp/ready"), tcp=False, timeout=60.0)


def test_ready_command_string_list_tcp_and_timeout(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            a:
              image: postgres:16
              ready: {command: "pg_isready -U 'my user' -d app", timeout: 120}
            b:
              image: postgres:16
              ready:
                command: [sh, -c, "pg_isready && psql -c 'select 1'"]
            c:
              image: redis:7
              ready: {tcp: true, timeout: 2.5}
        """,
    )
    a, b, c = verify_of(path).services
    assert a.ready == Readiness(
        command=("pg_isready", "-U", "my user", "-d", "app"), tcp=False, timeout=120.0
    )
    assert b.ready.command == ("sh", "-c", "pg_isready && psql -c 'select 1'")
    assert c.ready == Readiness(command=None, tcp=True, timeout=2.5)


@pytest.mark.parametrize(
    ("ready", "needle", "fragments"),
    [
        (
            "ready: {retries: 3}",
            "retries",
            ("unknown key 'verify.services.db.ready.retries'", "known keys: command, tcp, timeout"),
        ),
        ("ready: pg_isready", "ready:", ("'verify.services.db.ready' must be {command: ...}",)),
        (
            "ready: {timeout: 0}",
            "ready:",
            ("'verify.services.db.ready.timeout' must be a number of seconds",),
        ),
        ("ready: {tcp: 1}", "ready:", ("'verify.services.db.ready.tcp' must be true or false",)),
        ("ready: {command: 5}", "ready:", ("'verify.services.db.ready.command' must be a list",)),
    ],
)
def test_bad_readiness_settings(
    tmp_path: Path, ready: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write(
        tmp_path, f"verify:\n  services:\n    db:\n      image: postgres:16\n      {ready}\n"
    )
    assert_error_at(path, needle, *fragments)


# --- services: shape, names and keys -------------------------------------------------------------


def test_a_bare_string_is_the_image(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    cache: redis:7\n")
    assert only_service(path) == Service(
        name="cache",
        image="redis:7",
        kind="redis",
        env={},
        port=6379,
        url="redis://cache:6379/0",
        url_env="REDIS_URL",
        command=None,
        ready=Readiness(
            command=("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"), tcp=False, timeout=60.0
        ),
    )


def test_services_keep_their_order_env_and_command(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          services:
            db:
              image: postgres:16
              env: {POSTGRES_HOST_AUTH_METHOD: trust, PGPORT: 5432}
              command: postgres -c fsync=off -c 'shared_buffers=64MB'
            cache:
              image: redis:7
              command: [redis-server, --save, ""]
        """,
    )
    db, cache = verify_of(path).services
    assert [s.name for s in (db, cache)] == ["db", "cache"]
    assert db.env == {"POSTGRES_HOST_AUTH_METHOD": "trust", "PGPORT": "5432"}
    assert db.command == ("postgres", "-c", "fsync=off", "-c", "shared_buffers=64MB")
    assert cache.command == ("redis-server", "--save", "")
    assert cache.env == {}


def test_unknown_service_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write(
        tmp_path, "verify:\n  services:\n    db:\n      image: postgres:16\n      evn: {A: b}\n"
    )
    assert_error_at(path, "evn:", "unknown key 'verify.services.db.evn'; did you mean 'env'?")
    other = write(
        tmp_path,
        "verify:\n  services:\n    db:\n      image: postgres:16\n      volumes: [/x]\n",
    )
    assert_error_at(
        other,
        "volumes:",
        "unknown key 'verify.services.db.volumes'; known keys: image, kind, env, port, url",
    )


@pytest.mark.parametrize("name", ["DB", "db_1", "1db", "-db", "d" * 32, "db.main"])
def test_bad_service_names(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"verify:\n  services:\n    {name}: redis:7\n")
    assert_error_at(
        path,
        f"{name}:",
        f"service name '{name}' must be lowercase letters, digits and -",
        "host name",
    )


@pytest.mark.parametrize("name", ["db", "db-2", "d" * 31])
def test_good_service_names(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"verify:\n  services:\n    {name}: redis:7\n")
    assert only_service(path).name == name


@pytest.mark.parametrize(
    ("services", "needle", "fragments"),
    [
        ("services: [db]", "services:", ("'verify.services' must map a service name",)),
        ("services:\n    db: {kind: postgres}", "db:", ("'verify.services.db' needs an image",)),
        ("services:\n    db: 5", "db:", ("'verify.services.db' needs an image",)),
        (
            "services:\n    db: {image: 'Postgres 16'}",
            "db:",
            ("'Postgres 16' is not an image reference",),
        ),
        ("services:\n    db: {image: 'postgres:'}", "db:", ("is not an image reference",)),
        (
            "services:\n    db: {image: postgres, port: 70000}",
            "db:",
            ("'verify.services.db.port' must be a port number 1-65535", "70000"),
        ),
        (
            "services:\n    db: {image: postgres, port: '5432'}",
            "db:",
            ("'verify.services.db.port' must be a port number",),
        ),
        (
            "services:\n    db: {image: postgres, port: true}",
            "db:",
            ("'verify.services.db.port' must be a port number",),
        ),
        (
            "services:\n    db: {image: postgres, env: {2X: y}}",
            "db:",
            ("'2X' in 'verify.services.db.env' is not a variable name",),
        ),
        (
            "services:\n    db: {image: postgres, command: 5}",
            "db:",
            ("'verify.services.db.command' must be a list of strings",),
        ),
    ],
)
def test_bad_service_settings(
    tmp_path: Path, services: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path, f"verify:\n  {services}\n")
    assert_error_at(path, needle, *fragments)


# --- secrets -------------------------------------------------------------------------------------


def test_secrets_list_shorthand_passes_variables_through(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  secrets: [SECRET_KEY_BASE, RAILS_MASTER_KEY]\n")
    where = f"{path}:{line_of(path, 'secrets:')}"
    assert verify_of(path).secrets == (
        Secret(name="SECRET_KEY_BASE", from_env="SECRET_KEY_BASE", where=where),
        Secret(name="RAILS_MASTER_KEY", from_env="RAILS_MASTER_KEY", where=where),
    )


def test_secrets_from_env_and_from_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          secrets:
            SECRET_KEY_BASE: {from_env: CI_SECRET_KEY_BASE}
            RAILS_MASTER_KEY: {from_file: config/master.key}
            API_TOKEN: {from_file: /run/secrets/api_token}
        """,
    )
    key_base, master, token = verify_of(path).secrets
    assert key_base == Secret(
        name="SECRET_KEY_BASE",
        from_env="CI_SECRET_KEY_BASE",
        where=f"{path}:{line_of(path, 'SECRET_KEY_BASE')}",
    )
    # A relative path is the config file's directory's; the file is read at run time only.
    assert master.from_file == tmp_path / "config" / "master.key"
    assert master.from_env is None
    assert master.where == f"{path}:{line_of(path, 'RAILS_MASTER_KEY')}"
    assert token.from_file == Path("/run/secrets/api_token")


def test_secret_file_is_relative_to_the_config_not_the_working_dir(tmp_path: Path) -> None:
    path = write(
        tmp_path / "deploy",
        "verify:\n  secrets:\n    RAILS_MASTER_KEY: {from_file: ../config/master.key}\n",
    )
    (secret,) = verify_of(path).secrets
    assert secret.from_file == tmp_path / "deploy" / ".." / "config" / "master.key"


def test_a_secret_value_in_the_file_is_refused_without_repeating_it(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  secrets:\n    SECRET_KEY_BASE: abc123def456\n")
    message = assert_error_at(
        path,
        "SECRET_KEY_BASE",
        "'verify.secrets.SECRET_KEY_BASE' must be {from_env: VAR} or {from_file: PATH}",
        "never write a secret's value in the config",
    )
    assert "abc123def456" not in message


def test_a_secret_value_in_the_list_is_not_repeated(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  secrets:\n    - SECRET_KEY_BASE=abc123def456\n")
    message = config_error(path).message
    assert "abc123def456" not in message


@pytest.mark.parametrize(
    ("secrets", "needle", "fragments"),
    [
        (
            "secrets: SECRET_KEY_BASE",
            "secrets:",
            ("'verify.secrets' must be a list of variable names or a mapping",),
        ),
        (
            "secrets:\n    A: {from_env: B, from_file: c}",
            "A:",
            ("'verify.secrets.A' must be {from_env: VAR} or {from_file: PATH}",),
        ),
        ("secrets:\n    A: {from_vault: x}", "A:", ("'verify.secrets.A' must be {from_env: VAR}",)),
        ("secrets:\n    A: {}", "A:", ("'verify.secrets.A' must be {from_env: VAR}",)),
        (
            "secrets:\n    secret-key: {from_env: A}",
            "secret-key",
            ("'secret-key' in 'verify.secrets' is not a variable name",),
        ),
        (
            "secrets:\n    A: {from_env: 'B C'}",
            "A:",
            ("an entry of 'verify.secrets.A.from_env' is not an environment variable name",),
        ),
        (
            'secrets:\n    A: {from_file: ""}',
            "A:",
            ("'verify.secrets.A.from_file' must be a non-empty string",),
        ),
        (
            "secrets: [GOOD, 9BAD]",
            "secrets:",
            ("an entry of 'verify.secrets' is not an environment variable name",),
        ),
    ],
)
def test_bad_secrets(tmp_path: Path, secrets: str, needle: str, fragments: tuple[str, ...]) -> None:
    assert_error_at(write(tmp_path, f"verify:\n  {secrets}\n"), needle, *fragments)


# --- tests ---------------------------------------------------------------------------------------


def test_tests_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  tests:\n    command: bin/rails test\n")
    tests = verify_of(path).tests
    assert tests == VerifyTests(command="bin/rails test")
    assert tests.junit == DEFAULT_JUNIT == ("tmp/test-results", "test/reports", "spec/reports")
    assert tests.env == {}
    assert tests.bundle_without is None
    assert tests.timeout == 1800.0


def test_tests_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          tests:
            command: bundle exec rspec --format RspecJunitFormatter --out tmp/rspec.xml
            junit: [tmp/rspec.xml, ./tmp/test-results/, tmp//more]
            env: {PARALLEL_WORKERS: 1, COVERAGE: false}
            bundle_without: [development]
            timeout: 600
        """,
    )
    assert verify_of(path).tests == VerifyTests(
        command="bundle exec rspec --format RspecJunitFormatter --out tmp/rspec.xml",
        junit=("tmp/rspec.xml", "tmp/test-results", "tmp/more"),
        env={"PARALLEL_WORKERS": "1", "COVERAGE": "false"},
        bundle_without=("development",),
        timeout=600.0,
    )


def test_tests_command_list_is_joined_with_shell_quoting(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        verify:
          tests:
            command: [bin/rails, test, "test/models/user test.rb", "$HOME"]
        """,
    )
    tests = verify_of(path).tests
    assert tests is not None
    assert tests.command == "bin/rails test 'test/models/user test.rb' '$HOME'"


def test_bundle_without_may_be_empty_or_a_string(tmp_path: Path) -> None:
    empty = write(tmp_path, "verify:\n  tests: {command: rake, bundle_without: []}\n")
    tests = verify_of(empty).tests
    assert tests is not None
    assert tests.bundle_without == ()  # every group, where None means base's minus test
    words = write(tmp_path, "verify:\n  tests: {command: rake, bundle_without: development ci}\n")
    tests = verify_of(words).tests
    assert tests is not None
    assert tests.bundle_without == ("development", "ci")


@pytest.mark.parametrize(
    ("tests", "needle", "fragments"),
    [
        (
            "tests:\n    junit: [tmp/x]",
            "tests:",
            ("verify.tests.command is required", "bin/rails test"),
        ),
        ("tests: {}", "tests:", ("verify.tests.command is required",)),
        ("tests: bin/rails test", "tests:", ("'verify.tests' must be a mapping of keys",)),
        ('tests:\n    command: ""', "command:", ("'verify.tests.command' must be a non-empty",)),
        (
            "tests:\n    command: rake\n    junit: [/app/test/reports]",
            "junit:",
            ("'/app/test/reports' in verify.tests.junit must be a path inside the app context",),
        ),
        (
            "tests:\n    command: rake\n    junit: [test/../../etc]",
            "junit:",
            ("'test/../../etc' in verify.tests.junit must be a path inside the app context",),
        ),
        (
            "tests:\n    command: rake\n    junit: [.]",
            "junit:",
            ("in verify.tests.junit must be a path inside the app context",),
        ),
        (
            "tests:\n    command: rake\n    env: {bad-name: x}",
            "env:",
            ("'bad-name' in 'verify.tests.env' is not a variable name",),
        ),
        (
            "tests:\n    command: rake\n    bundle_without: 3",
            "bundle_without:",
            ("'verify.tests.bundle_without' must be a list of strings",),
        ),
        (
            "tests:\n    command: rake\n    timeout: 0",
            "timeout:",
            ("'verify.tests.timeout' must be a number of seconds above 0 and at most 86400",),
        ),
        (
            "tests:\n    command: rake\n    timeout: 100000",
            "timeout:",
            ("'verify.tests.timeout' must be a number of seconds",),
        ),
    ],
)
def test_bad_tests_settings(
    tmp_path: Path, tests: str, needle: str, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path, f"verify:\n  {tests}\n")
    assert_error_at(path, needle, *fragments)


# --- the test variant built from the section -------------------------------------------------


def test_test_variant_installs_the_test_group_in_repositories_of_its_own(tmp_path: Path) -> None:
    from buildkit.run.verify import test_variant

    path = write(
        tmp_path,
        """\
        base:
          bundle_without: [development, test, ci]
        verify:
          tests: {command: bin/rails test}
        """,
    )
    config = configmod.resolve(path, env={})
    variant = test_variant(config)
    assert variant.base.bundle_without == ("development", "ci")
    assert variant.ecr.repositories == {
        "ruby": "shop-ruby",
        "base": "shop-base-test",
        "app": "shop-app-test",
    }
    assert variant.app.assets.precompile is False
    assert variant.ruby == config.ruby
    assert variant.app.context == config.app.context
    assert config.base.bundle_without == ("development", "test", "ci")  # production untouched
    explicit = write(
        tmp_path,
        "verify:\n  tests: {command: bin/rails test, bundle_without: [ci]}\n",
    )
    assert test_variant(configmod.resolve(explicit, env={})).base.bundle_without == ("ci",)


# --- the documented example ----------------------------------------------------------------------


def test_the_example_of_docs_verify_md_resolves_as_documented(tmp_path: Path) -> None:
    """docs/verify.md's full example (the ```yaml block that starts with `verify:`) is valid, and
    gives the URLs and checks the doc's table promises."""
    text = (REPO / "docs" / "verify.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("verify:")]
    assert blocks, "docs/verify.md has no ```yaml block starting with verify:"
    path = write(tmp_path, blocks[0], rails=True)
    settings = verify_of(path)
    assert settings.declared
    assert settings.smoke.path == "/up"
    by_name = {s.name: s for s in settings.services}
    assert by_name["db"].url == "postgres://shop:test@db:5432/shop_test"
    assert by_name["db"].ready.command == (
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-p",
        "5432",
        "-U",
        "shop",
    )
    assert by_name["cache"].url == "redis://cache:6379/0"
    assert [(s.name, s.from_env) for s in settings.secrets] == [
        ("SECRET_KEY_BASE", "SECRET_KEY_BASE")
    ]
    assert settings.tests is not None
    assert settings.tests.command == "bin/rails db:test:prepare test"
    assert settings.tests.junit == ("tmp/test-results",)


# --- review fixes: each of these failed before its fix ------------------------------------------


def test_a_bare_verify_key_declares_the_section(tmp_path: Path) -> None:
    settings = verify_of(write(tmp_path, "verify:\n"))
    assert settings.declared is True
    assert settings.services == ()


def test_mysql_root_gets_the_root_password_and_no_database_by_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "verify:\n  services:\n    db:\n      image: mysql:8.4\n"
        "      env: {MYSQL_ROOT_PASSWORD: rootpw}\n",
    )
    assert only_service(path).url == "mysql2://root:rootpw@db:3306/"


def test_the_database_name_is_percent_quoted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "verify:\n  services:\n    db:\n      image: postgres:16\n"
        "      env: {POSTGRES_PASSWORD: pw, POSTGRES_DB: 'a b/c'}\n",
    )
    assert only_service(path).url == "postgres://postgres:pw@db:5432/a%20b%2Fc"


def test_a_null_port_keeps_the_kinds_port(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    db: {image: redis:7, port: null}\n")
    service = only_service(path)
    assert service.port == 6379
    assert service.url == "redis://db:6379/0"
    assert service.ready.command == ("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping")


def test_a_url_must_be_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    db: {image: redis:7, url: [a]}\n")
    assert_error_at(path, "url:", "'verify.services.db.url' must be a non-empty string")


def test_a_misspelt_image_key_suggests_image(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  services:\n    db:\n      imgae: redis:7\n")
    assert_error_at(path, "imgae", "unknown key 'verify.services.db.imgae'; did you mean 'image'?")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "root"), ("image", ""), ("app", "app"), ("1000:1000", "1000:1000")],
)
def test_tests_run_as_root_unless_told(tmp_path: Path, given: str | None, expected: str) -> None:
    user = f"\n    user: '{given}'" if given else ""
    path = write(tmp_path, f"verify:\n  tests:\n    command: rake{user}\n")
    tests = verify_of(path).tests
    assert tests is not None
    assert tests.user == expected


def test_a_bad_tests_user_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "verify:\n  tests:\n    command: rake\n    user: 'Not A User'\n")
    assert_error_at(path, "user:", "'verify.tests.user' must be root, image")
