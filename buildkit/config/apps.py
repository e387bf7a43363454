"""`apps:`: several apps in one config (a monorepo), each its own view of the file.

The top level holds the shared defaults; `apps.<key>` overrides any top-level section for one
app, deep-merged (mappings merge key by key, lists and scalars replace). Each app becomes its own
`Document` whose lines point at the per-app key where the app set it, so an error in a merged
value still names the file:line the user wrote. `name` is not inherited: an app's name is its
`apps.<key>.name` or its key, and the top-level name only prefixes the shared Ruby repository.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buildkit.config import schema
from buildkit.config.yamlsrc import Document
from buildkit.errors import ConfigError

_APP_KEY = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")


@dataclass(frozen=True)
class AppDocument:
    """One app of an `apps:` config: its key and the merged document it resolves from."""

    key: str
    doc: Document


def has_apps(doc: Document) -> bool:
    return "apps" in doc.data


def shared_ruby_repository(doc: Document) -> str:
    """The Ruby repository every app shares unless `ruby.repository` says otherwise:
    `<top-level name>-ruby`, or `ruby` without a top-level name."""
    name = doc.data.get("name")
    return f"{schema.image_name(doc, name)}-ruby" if name is not None else "ruby"


def ruby_repository(
    doc: Document, given: Any, ecr_repository: str | None, shared: str | None
) -> str | None:
    """`ruby.repository`, else `ecr.repositories.ruby`, else the apps' shared one; the two keys
    may say the same thing, never two different things."""
    if given is None:
        return ecr_repository or shared
    name = schema.repository_name(doc, "ruby.repository", given)
    if ecr_repository is not None and ecr_repository != name:
        raise ConfigError(
            f"{doc.where('ruby.repository')}: ruby.repository '{name}' and "
            f"ecr.repositories.ruby '{ecr_repository}' name different repositories; keep one"
        )
    return name


def split(doc: Document, keys: Mapping[str, Any]) -> list[AppDocument]:
    """One merged document per app, in file order; unknown per-app keys are rejected."""
    raw = doc.data.get("apps")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(
            f"{doc.where('apps')}: 'apps' must be a mapping of app names to their overrides, "
            "e.g. apps: {web: {app: {context: web}}}"
        )
    top = {k: v for k, v in doc.data.items() if k not in ("apps", "name")}
    return [
        AppDocument(key, _app_document(doc, key, section, top, keys))
        for key, section in raw.items()
    ]


def select(apps: list[AppDocument], wanted: tuple[str, ...], where: str) -> list[AppDocument]:
    """The apps named by `--app` (all when none is named); an unknown name is an error."""
    if not wanted:
        return apps
    known = [a.key for a in apps]
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known apps: {', '.join(known)}"
            raise ConfigError(f"{where}: no app '{name}' in apps; {hint}")
    return [a for a in apps if a.key in wanted]


def _app_document(
    doc: Document, key: str, section: Any, top: Mapping[str, Any], keys: Mapping[str, Any]
) -> Document:
    prefix = f"apps.{key}"
    if not _APP_KEY.match(str(key)):
        raise ConfigError(
            f"{doc.where(prefix)}: app name '{key}' must be lowercase letters and digits "
            "separated by - or _ (it is the app's default image name)"
        )
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{doc.where(prefix)}: '{prefix}' must be a mapping of keys")
    schema.check_keys(doc, keys, prefix)
    section = section or {}
    data = _deep_merge(top, section)
    data["name"] = section.get("name", key)
    lines = {k: v for k, v in doc.lines.items() if not k.startswith("apps.") and k != "name"}
    for path, line in doc.lines.items():
        if path.startswith(prefix + "."):
            lines[path[len(prefix) + 1 :]] = line
    lines.setdefault("name", doc.lines.get(prefix, 0))
    origins = {k: v for k, v in doc.origins.items() if k != "name"}  # IMGBUILD_NAME: the top's
    return Document(path=doc.path, data=data, lines=lines, origins=origins)


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
