"""Where a config sits in the repository CodeBuild checks out: buildspecs name it from the root."""

from __future__ import annotations

from pathlib import Path

from buildkit import proc
from buildkit.config.loading import Config
from buildkit.errors import CommandNotFoundError, ConfigError


def source_root(config: Config) -> Path:
    """The repository CodeBuild checks out: git's top level above the config, else its folder."""
    try:
        result = proc.run(
            ["git", "-C", str(config.root), "rev-parse", "--show-toplevel"],
            check=False,
            quiet=True,
            timeout=10,
        )
    except CommandNotFoundError:
        return config.root.resolve()
    top = result.stdout.strip()
    return Path(top).resolve() if result.returncode == 0 and top else config.root.resolve()


def config_in_repo(config: Config) -> str:
    root = source_root(config)
    try:
        return config.path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise ConfigError(
            f"{config.path}: the config is outside the repository {root}; CodeBuild can only "
            "read files of the checked-out source"
        ) from None
