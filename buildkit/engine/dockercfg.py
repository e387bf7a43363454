"""A private DOCKER_CONFIG for one run, so BuildKit can read registry credentials (for
--cache-from) without them touching argv or the user's ~/.docker/config.json.

The user's config is copied minus `credsStore` (which would shadow our entries), our `auths` are
added, and the user's cli-plugins dir is linked in: DOCKER_CONFIG also moves the plugin lookup,
and without it a per-user buildx would vanish.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from buildkit.engine.credentials import Auth, docker_config_dir


def _user_config() -> dict[str, object]:
    try:
        data = json.loads((docker_config_dir() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def private_config(auths: Mapping[str, Auth]) -> Iterator[Path]:
    """A temp docker config dir holding auths; removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="imgbuild-docker-"))
    try:
        directory.chmod(0o700)
        config = _user_config()
        config.pop("credsStore", None)
        helpers = dict(config.get("credHelpers") or {})  # type: ignore[call-overload]
        entries = dict(config.get("auths") or {})  # type: ignore[call-overload]
        for host, auth in auths.items():
            helpers.pop(host, None)
            token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
            entries[host] = {"auth": token}
        config.update({"auths": entries, "credHelpers": helpers})
        path = directory / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        plugins = docker_config_dir() / "cli-plugins"
        if plugins.is_dir():
            (directory / "cli-plugins").symlink_to(plugins)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
