"""Registry credentials: from the docker config the CLI would use, or handed in (ECR tokens).

Never put on argv: the registry client sends them as headers, the SDK as auth_config.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from buildkit import proc
from buildkit.errors import CommandNotFoundError


@dataclass(frozen=True)
class Auth:
    username: str
    password: str

    def basic_header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def sdk_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def for_registry(host: str) -> Auth | None:
    """Credentials the docker CLI has for host (auths entry or credential helper), if any."""
    try:
        config = json.loads((docker_config_dir() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = config.get("auths", {}).get(host) or config.get("auths", {}).get(f"https://{host}")
    if isinstance(entry, dict) and entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        proc.register_secret(password)
        return Auth(user, password)
    helper = config.get("credHelpers", {}).get(host) or config.get("credsStore")
    return _from_helper(helper, host) if helper else None


def _from_helper(helper: str, host: str) -> Auth | None:
    try:
        result = proc.run([f"docker-credential-{helper}", "get"], input_text=host, quiet=True)
        data = json.loads(result.stdout)
    except (proc.CommandFailed, CommandNotFoundError, ValueError):  # broken helper: no creds
        return None
    proc.register_secret(data.get("Secret", ""))
    return Auth(data.get("Username", ""), data.get("Secret", ""))
