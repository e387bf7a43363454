"""`init_app`: detect, render, check the text with imgbuild's own config loader, write it.

The file appears whole or not at all: it is written to a temp file beside it, loaded with
`config.loading.resolve` (a file imgbuild itself would reject is never left behind), then
published with a hard link, which fails if imgbuild.yaml exists (so two inits cannot both
win), or with os.replace under --force.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit.config import loading
from buildkit.errors import ConfigError, ImgbuildError, InputError
from buildkit.scaffold import detect as detectmod
from buildkit.scaffold import render as rendermod


@dataclass(frozen=True, kw_only=True)
class InitResult:
    path: Path
    text: str
    detection: detectmod.Detection
    replaced: bool  # an existing imgbuild.yaml was overwritten (--force)


def init_app(
    root: Path,
    *,
    name: str | None = None,
    registry: str | None = None,
    force: bool = False,
    env: Mapping[str, str] | None = None,
) -> InitResult:
    """Write root/imgbuild.yaml for the Rails app at root."""
    env = dict(os.environ) if env is None else env
    root = Path(os.path.normpath(root.expanduser().absolute()))  # `..` dropped, symlinks kept
    target = root / loading.DEFAULT_CONFIG_NAME
    existed = target.exists()
    if existed and not force:
        raise _exists(target)
    detection = detectmod.detect(root, name=name, registry=registry, env=env)
    text = rendermod.render(detection)
    write_checked(target, text, replace=force)
    return InitResult(path=target, text=text, detection=detection, replaced=existed)


def write_checked(path: Path, text: str, *, replace: bool) -> None:
    """Write text to path atomically after the config loader accepted it; without replace, an
    existing path is a ConfigError and stays as it was. A failing write is an InputError."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 suits no config
        _check_loads(tmp)
        _publish(tmp, path, replace=replace)
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, path: Path, *, replace: bool) -> None:
    if replace:
        tmp.replace(path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: no window between the check and the write
    except FileExistsError:
        raise _exists(path) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise _exists(path) from None
        tmp.replace(path)


def _check_loads(path: Path) -> None:
    """The written file must resolve with imgbuild's loader, with no IMGBUILD_* overrides."""
    try:
        loading.resolve(path, env={})
    except ImgbuildError as exc:
        raise type(exc)(
            f"imgbuild init produced a config its own loader rejects ({exc.message}); nothing "
            "was written; this is a bug in imgbuild, please report it"
        ) from exc


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _unwritable(path: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write {path}: {exc.strerror or exc}; nothing was written")


def _exists(path: Path) -> ConfigError:
    return ConfigError(
        f"{path} already exists; imgbuild init never overwrites it: pass --force to replace it, "
        "or edit it (docs/config.md)"
    )
