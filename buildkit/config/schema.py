"""The shape of imgbuild.yaml and the checks on each value; every error names file:line and key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buildkit.config.yamlsrc import Document
from buildkit.engine import reference
from buildkit.errors import ConfigError, InputError, InvalidReferenceError

DEFAULT_BASE = "debian:bookworm-slim"
#: ruby-build release used when the config names none (fetched from GitHub at build time).
DEFAULT_RUBY_BUILD = "v20250507"

_COMMON = {"dockerfile": None, "build_args": None}
#: Allowed keys; a nested dict is a section, None is a leaf.
KEYS: dict[str, Any] = {
    "name": None,
    "registry": None,
    "base_image": None,
    "platform": None,
    "builder": None,
    "ruby": {
        "version": None,
        "configure_opts": None,
        "jemalloc": None,
        "yjit": None,
        "source": {"url": None, "path": None, "sha256": None},
        "ruby_build": None,
        "repository": None,
        **_COMMON,
    },
    "base": {
        "packages": None,
        "build_packages": None,
        "gemfile": None,
        "bundle_without": None,
        "secrets": None,
        **_COMMON,
    },
    "budgets": None,  # replaced below: each feature section owns its keys
    "codebuild": None,
    "app": {
        "context": None,
        "command": None,
        "processes": None,  # NAME: command (config.deploy); the names are the user's
        "port": None,
        "user": None,
        "source_url": None,
        "bulk": None,
        "delta": None,
        "assets": {
            "precompile": None,
            "inputs": None,
            "command": None,
            "output": None,
            "packages": None,
        },
        **_COMMON,
    },
}

_NAME = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_RUBY_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-(?:preview|rc)\d+)?$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[\w.+:~-]+)?$")
_UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_keys(doc: Document, section: Mapping[str, Any] | None = None, prefix: str = "") -> None:
    """Reject unknown keys anywhere in the document, suggesting the closest known one."""
    allowed = KEYS if section is None else section
    data = doc.data if not prefix else _get(doc.data, prefix)
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = (
                f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(allowed)}"
            )
            raise ConfigError(f"{doc.where(full)}: unknown key '{full}'{hint}")
        if isinstance(allowed[key], dict):
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{doc.where(full)}: '{full}' must be a mapping of keys")
            check_keys(doc, allowed[key], full)


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _type_error(doc: Document, key: str, expected: str, value: Any) -> ConfigError:
    shown = repr(value) if len(repr(value)) < 40 else f"a {type(value).__name__}"
    return ConfigError(f"{doc.where(key)}: '{key}' must be {expected}, not {shown}")


def nonempty_str(doc: Document, key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
        raise _type_error(doc, key, "a non-empty string", value)
    return str(value)


def optional_str(doc: Document, key: str, value: Any) -> str | None:
    return None if value is None else nonempty_str(doc, key, value)


_BUILDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def builder_name(doc: Document, value: Any) -> str | None:
    """A buildx builder's name as `docker buildx create --name` takes it, or None."""
    name = optional_str(doc, "builder", value)
    if name is not None and not _BUILDER.match(name):
        raise ConfigError(
            f"{doc.where('builder')}: 'builder' must be a buildx builder's name (letters, digits, "
            f"'_', '.', '+', '-'), not {name!r}; `docker buildx ls` lists them"
        )
    return name


def boolean(doc: Document, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _type_error(doc, key, "true or false", value)
    return value


def str_list(doc: Document, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _type_error(doc, key, "a list of strings", value)
    return tuple(str(v) for v in value)


def relative_paths(doc: Document, key: str, value: Any) -> tuple[str, ...]:
    """Paths inside the context, `/`-separated, without `..`: 'app/assets/images'."""
    paths = []
    for raw in str_list(doc, key, value):
        clean = "/".join(part for part in raw.strip().split("/") if part not in ("", "."))
        if raw.startswith("/") or ".." in clean.split("/") or not clean:
            raise ConfigError(
                f"{doc.where(key)}: '{raw}' in {key} must be a path inside the app context, "
                "like app/assets/images"
            )
        paths.append(clean)
    return tuple(paths)


def str_mapping(doc: Document, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _type_error(doc, key, "a mapping of NAME: value", value)
    for name, item in value.items():
        if isinstance(item, (dict, list)) or item is None:
            raise _type_error(doc, f"{key}.{name}", "a string", item)
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


def env_names(doc: Document, key: str, value: Any) -> tuple[str, ...]:
    names = str_list(doc, key, value)
    for name in names:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ConfigError(
                f"{doc.where(key)}: '{name}' in '{key}' is not an environment variable name; "
                "list the NAMES of variables holding credentials, never their values"
            )
    return names


def package_list(doc: Document, key: str, value: Any) -> tuple[str, ...]:
    packages = str_list(doc, key, value)
    for package in packages:
        if not _PACKAGE.match(package):
            raise ConfigError(
                f"{doc.where(key)}: '{package}' in '{key}' is not a Debian package name "
                "(lowercase letters, digits, + - . ; optional =version)"
            )
    return tuple(sorted(set(packages)))


def repository_name(doc: Document, key: str, value: Any) -> str:
    """A repository path without the registry host: `shop-ruby`, `shared/ruby-3.3`."""
    name = nonempty_str(doc, key, value)
    if not _NAME.match(name) or len(name) > 256:
        raise ConfigError(
            f"{doc.where(key)}: '{key}' '{name}' is not a valid repository name; use lowercase "
            "letters, digits, . _ - and / separators (e.g. 'shared/ruby-3.3')"
        )
    return name


def image_name(doc: Document, value: Any) -> str:
    name = nonempty_str(doc, "name", value)
    if not _NAME.match(name):
        raise ConfigError(
            f"{doc.where('name')}: name '{name}' is not a valid image repository name; use "
            "lowercase letters, digits and . _ - (e.g. 'myapp')"
        )
    return name


def registry(doc: Document, value: Any) -> str | None:
    """HOST[:PORT][/PATH] as Docker reads it (engine.reference), or `ecr`."""
    if value is None:
        return None
    text = nonempty_str(doc, "registry", value).rstrip("/")
    if text == "ecr":
        return text
    try:
        reference.split_registry(text)
    except InvalidReferenceError as exc:
        raise ConfigError(
            f"{doc.where('registry')}: registry '{text}' {exc.reason}; e.g. 127.0.0.1:5000, "
            "registry.example.com/team or 123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        ) from None
    return text


def image_ref(doc: Document, key: str, value: Any) -> str:
    """An image reference Docker accepts (distribution/reference's grammar, engine.reference)."""
    ref = nonempty_str(doc, key, value)
    try:
        reference.normalize(ref)
    except InvalidReferenceError as exc:
        shown = ref if len(ref) <= 80 else f"{ref[:60]}… ({len(ref)} characters)"
        hint = "drop the scheme, " if "://" in ref else ""
        raise ConfigError(
            f"{doc.where(key)}: {key} '{shown}' is not an image reference Docker accepts "
            f"({exc.reason}); {hint}write NAME[:TAG][@sha256:DIGEST] like debian:bookworm-slim "
            "or registry.example.com:5000/debian:12"
        ) from None
    return ref


def ruby_version(doc: Document, value: Any) -> str:
    version = nonempty_str(doc, "ruby.version", value)
    if not _RUBY_VERSION.match(version):
        raise ConfigError(
            f"{doc.where('ruby.version')}: ruby.version '{version}' is not a full MRI version "
            'like "3.3.8"; quote it in YAML'
        )
    return version


def sha256_hex(doc: Document, key: str, value: Any) -> str:
    text = nonempty_str(doc, key, value).lower().removeprefix("sha256:")
    if not _HEX64.match(text):
        raise ConfigError(f"{doc.where(key)}: '{key}' must be 64 hex digits (sha256sum output)")
    return text


def tarball_url(doc: Document, value: Any) -> str:
    url = nonempty_str(doc, "ruby.source.url", value)
    if not re.match(r"^(https?|file)://\S+\.(tar\.gz|tgz|tar\.bz2)$", url):
        raise ConfigError(
            f"{doc.where('ruby.source.url')}: '{url}' must be an http(s) or file URL of a "
            ".tar.gz or .tar.bz2 Ruby release"
        )
    return url


def ruby_build(doc: Document, value: Any, root: Path) -> str:
    """A ruby-build release tag (vYYYYMMDD), a tarball URL, or a local checkout/tarball path."""
    text = nonempty_str(doc, "ruby.ruby_build", value)
    if re.match(r"^v?\d{8}(\.\d+)?$", text) or re.match(r"^https?://", text):
        return text
    return str(existing_path(doc, "ruby.ruby_build", text, root))


def resolve_path(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path)


def existing_path(doc: Document, key: str, value: Any, root: Path) -> Path:
    path = resolve_path(nonempty_str(doc, key, value), root)
    if not path.exists():
        raise InputError(f"{doc.where(key)}: {key} {path} does not exist; fix the path")
    return path.resolve()


def existing_file(doc: Document, key: str, value: Any, root: Path) -> Path:
    path = existing_path(doc, key, value, root)
    if not path.is_file():
        raise InputError(f"{doc.where(key)}: {key} {path} is not a file")
    return path


def existing_dir(doc: Document, key: str, value: Any, root: Path) -> Path:
    path = existing_path(doc, key, value, root)
    if not path.is_dir():
        raise InputError(f"{doc.where(key)}: {key} {path} is not a directory")
    return path


def relative_name(doc: Document, key: str, value: Any) -> str:
    text = nonempty_str(doc, key, value)
    if text.startswith("/") or ".." in Path(text).parts:
        raise ConfigError(f"{doc.where(key)}: '{key}' must be a path inside the app, like Gemfile")
    return text


def port(doc: Document, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _type_error(doc, "app.port", "a port number 1-65535", value)
    return value


def unix_name(doc: Document, key: str, value: Any) -> str:
    text = nonempty_str(doc, key, value)
    if not _UNIX_NAME.match(text) or text == "root":
        raise ConfigError(f"{doc.where(key)}: '{key}' must be a non-root user name like 'app'")
    return text
