"""The app's precompiled assets: `rails assets:precompile` in an image of its own, under the source.

Precompiling in the app layer would run it again on every Ruby edit (seconds with importmap and
Propshaft, minutes with Node and a bundler) and leave node_modules and tmp/cache/assets in the
image. With `app.assets`, imgbuild first builds a hidden image, FROM the base image, in two stages:

    FROM ${BASE_IMAGE} AS precompile   as root: the extra packages (nodejs when the app has a
                                       package.json), the JS packages from the lockfile, the whole
                                       context (Rails must boot), then the command with
                                       RAILS_ENV=production and SECRET_KEY_BASE_DUMMY=1
    FROM ${BASE_IMAGE}                 only the compiled output, copied from that stage to where
                                       the app Dockerfile copies its context

tagged `<app repository>:assets-<key>`. Its key covers the base key, the files the input globs
match among the app's kept files, the command, output, packages and the generated Dockerfile: a
Ruby-only edit reuses the image, a stylesheet edit builds it again, a Gemfile.lock change too
(through the base key). Anything else the precompile reads (a view Tailwind scans, an initializer
outside the globs) moves the key only once it is listed in `app.assets.inputs`.

The app layer is then built FROM that image (or its bulk FROM it), with the output directory and
node_modules left out of its context: the compiled files come from the precompile, never from a
stale local copy.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from buildkit.applayer import dockerfile
from buildkit.config.loading import AssetsConfig
from buildkit.errors import ConfigError
from buildkit.source.dockerignore import IgnoreRules
from buildkit.source.hashing import combine
from buildkit.source.keys import KEY_LENGTH, compute_key

TAG_PREFIX = "assets-"
#: `precompile: auto` turns on for an app with bin/rails and one of these.
AUTO_MARKERS = ("app/assets", "app/javascript", "config/importmap.rb")
#: The JS package install run before the whole context is copied (so a stylesheet edit reuses
#: it): the first lockfile found decides. Debian has no pnpm or bun: their apps install in
#: `command`. Debian's yarn is `yarnpkg`; jsbundling-rails runs `yarn`, hence the link.
_INSTALLS = (
    ("yarn.lock", ("nodejs", "yarnpkg"), "ln -sf \"$(command -v yarnpkg)\" /usr/local/bin/yarn && "
     "yarn install --frozen-lockfile"),
    ("package-lock.json", ("nodejs", "npm"), "npm ci"),
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class AssetsSpec:
    """The hidden assets image under the app layer."""

    image: str  # <app repository>:assets-<key12>
    key: str
    command: str
    output: str  # relative to the app's directory
    packages: tuple[str, ...]  # Debian packages of the precompile stage
    lockfile: str | None  # the JS lockfile whose install runs before the context COPY
    ignore: tuple[str, ...]  # the precompile build's context: the app's rules + exclusions
    files: int  # how many files of the app the input globs match
    dockerfile: str  # the generated Dockerfile (part of the key)


def enabled(settings: AssetsConfig, kept: Callable[[str], bool]) -> bool:
    """Whether the app precompiles: `precompile: true`, or auto and the app has bin/rails and
    one of AUTO_MARKERS (`kept`: the path exists in the context and is not ignored)."""
    if settings.precompile is not None:
        return settings.precompile
    return kept("bin/rails") and any(kept(marker) for marker in AUTO_MARKERS)


def app_exclusions(settings: AssetsConfig) -> tuple[str, ...]:
    """What the app layer's context leaves out once the assets image supplies the output."""
    return ("node_modules", settings.output)


def destination(app_dockerfile_text: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(absolute destination, flags, setup lines) of the app Dockerfile's context COPY, where the
    compiled output must land; None when it has no single one, or its place is not known."""
    target = dockerfile.context_copy(app_dockerfile_text)
    if target is None:
        return None
    setup = dockerfile.setup(app_dockerfile_text)
    dest = dockerfile.absolute_dest(target[0], setup)
    return None if dest is None else (dest, target[1], setup)


def spec_for(
    *,
    settings: AssetsConfig,
    files: Mapping[str, str],
    base_key: str,
    app_dockerfile_text: str,
    repository: str,
    ignore: tuple[str, ...],
) -> AssetsSpec | None:
    """The assets image for the app's kept `files` (relpath -> digest entry), or None when the
    app Dockerfile has no single `COPY . <dest>` with a destination known at plan time (the
    output must land where the app's files do)."""
    place = destination(app_dockerfile_text)
    if place is None:
        return None
    dest, flags, setup = place
    try:
        matcher = IgnoreRules(settings.inputs)
    except ValueError as exc:
        raise ConfigError(f"app.assets.inputs: {exc}") from None
    inputs = {rel: entry for rel, entry in files.items() if matcher.is_ignored(rel)}
    node, install = _node(files)
    packages = tuple(sorted({*settings.packages, *node}))
    text = _render(
        setup=setup,
        dest=dest,
        flags=flags,
        packages=packages,
        install=install,
        command=settings.command,
        output=settings.output,
    )
    key = compute_key(
        "assets",
        base_key,
        {
            "files": combine(inputs),
            "command": settings.command,
            "output": settings.output,
            "packages": " ".join(packages),
            "Dockerfile": text,
        },
    )
    # The precompile starts from no compiled output, and installs node_modules itself when it
    # has a lockfile (a local node_modules may hold another platform's binaries).
    lockfile = install[0] if install else None
    own = (settings.output, "node_modules") if lockfile else (settings.output,)
    return AssetsSpec(
        image=f"{repository}:{TAG_PREFIX}{key[:KEY_LENGTH]}",
        key=key,
        command=settings.command,
        output=settings.output,
        packages=packages,
        lockfile=lockfile,
        ignore=(*ignore, *own),
        files=len(inputs),
        dockerfile=text,
    )


def _node(files: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, str] | None]:
    """Node's Debian packages and the (lockfile, install command), from the app's files."""
    if "package.json" not in files:
        return (), None
    for lockfile, packages, install in _INSTALLS:
        if lockfile in files:
            return packages, (lockfile, install)
    return ("nodejs",), None


def _render(
    *,
    setup: tuple[str, ...],
    dest: str,
    flags: str,
    packages: tuple[str, ...],
    install: tuple[str, str] | None,
    command: str,
    output: str,
) -> str:
    compiled = posixpath.join(dest, output)
    lines = [
        "# generated by imgbuild: the app's precompiled assets (app.assets), under the source",
        "ARG BASE_IMAGE",
        "FROM ${BASE_IMAGE} AS precompile",
        "USER root",
        # Before the app Dockerfile's own ENV lines, so that they win.
        "ENV RAILS_ENV=production SECRET_KEY_BASE_DUMMY=1",
        *setup,
    ]
    if packages:
        lines += [
            "ARG DEBIAN_FRONTEND=noninteractive",
            "RUN apt-get update && apt-get install -y --no-install-recommends "
            f"{' '.join(packages)} && rm -rf /var/lib/apt/lists/*",
        ]
    lines.append(f"WORKDIR {dest}")
    if install is not None:
        lockfile, run = install
        lines += [
            f"COPY {json.dumps(['package.json', lockfile, posixpath.join(dest, '')])}",
            f"RUN {run}",
        ]
    missing = f"imgbuild: {command} wrote no {output} (app.assets.output)"
    lines += [
        f"COPY . {dest}",
        f"RUN {command}",
        f"RUN test -d {shlex.quote(output)} || {{ echo {shlex.quote(missing)} >&2; exit 1; }}",
        "FROM ${BASE_IMAGE}",
        f"COPY --from=precompile {flags + ' ' if flags else ''}{json.dumps([compiled, compiled])}",
    ]
    return "\n".join(lines) + "\n"
