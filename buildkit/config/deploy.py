"""What a deploy tool reads: `app.processes` (one image, several commands) and `kustomize:`.

```yaml
app:
  command: bundle exec puma -C config/puma.rb   # the image's CMD: process `web`
  processes:
    worker: bundle exec sidekiq
    cron: bin/rails runner Cron.run
kustomize:
  name: shop-app      # what the manifests' `image:` says (kustomize's images[].name)
```

The image runs one command, its CMD; the processes are that command (`web`) and the others a
deploy runs from the same digest with their own command. So `web` is always there: it is
`app.processes.web` when given, else `app.command` (or its default), and the two may not say
different things (docs/config.md, "Process types").
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buildkit.config import schema
from buildkit.config.yamlsrc import Document
from buildkit.engine import reference
from buildkit.errors import ConfigError, InvalidReferenceError

WEB = "web"
KUSTOMIZE_KEYS: dict[str, Any] = {"name": None}
#: A DNS label (RFC 1123), what Kubernetes names containers with: lowercase letters, digits and
#: `-`, at most 63, starting and ending with a letter or digit. It also fits in a label key.
_PROCESS_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class KustomizeSettings:
    """`kustomize:`; `name` None means the app repository's name (`<name>-app`)."""

    name: str | None = None


def is_process_name(name: str) -> bool:
    return bool(_PROCESS_NAME.match(name))


def processes(
    doc: Document, raw_app: Mapping[str, Any], command: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(the image's command, the processes in order with `web` first) from `app.processes` and
    the already-read `app.command` (`command`, its default when the key is absent)."""
    raw = raw_app.get("processes")
    if raw is None:
        return command, ((WEB, command),)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{doc.where('app.processes')}: 'app.processes' must be a mapping of "
            f"NAME: command, like worker: bundle exec sidekiq, not {_shown(raw)}"
        )
    found = {str(name): _process(doc, str(name), value) for name, value in raw.items()}
    web = found.pop(WEB, None)
    if web is not None and "command" in raw_app and web != command:
        raise ConfigError(
            f"{doc.where('app.processes.web')}: app.processes.web ({web}) and app.command "
            f"({command}) are both the image's command and differ; keep one of them"
        )
    web = web if web is not None else command
    return web, ((WEB, web), *found.items())


def _process(doc: Document, name: str, value: Any) -> str:
    key = f"app.processes.{name}"
    if not is_process_name(name):
        raise ConfigError(
            f"{doc.where(key)}: process name '{name}' must be a DNS label, as Kubernetes names "
            "containers: lowercase letters, digits and -, at most 63 (e.g. worker, cron)"
        )
    if isinstance(value, list):
        value = shlex.join(schema.str_list(doc, key, value))
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"{doc.where(key)}: '{key}' is empty; give the process its command")
    return schema.nonempty_str(doc, key, value)


def parse_kustomize(doc: Document, raw: Any) -> KustomizeSettings:
    if raw is None:
        return KustomizeSettings()
    name = raw.get("name")
    if name is None:
        return KustomizeSettings()
    text = schema.nonempty_str(doc, "kustomize.name", name)
    try:
        reference.parse_name(text)
    except InvalidReferenceError:
        raise ConfigError(
            f"{doc.where('kustomize.name')}: kustomize.name '{text}' is not an image name "
            "without tag or digest, as the manifests' `image:` names it (e.g. shop-app or "
            "registry.example.com/team/shop-app)"
        ) from None
    return KustomizeSettings(name=text)


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) < 40 else f"a {type(value).__name__}"
