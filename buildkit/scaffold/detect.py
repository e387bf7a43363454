"""Read a Rails app: everything `imgbuild init` writes, and where each value came from.

Nothing here writes; `detect` returns a frozen `Detection` that `render` turns into the commented
imgbuild.yaml and `--json` prints as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit.applayer import assets as assetsmod
from buildkit.config import schema
from buildkit.config.loading import DEFAULT_ASSET_INPUTS, AssetsConfig
from buildkit.config.yamlsrc import Document
from buildkit.errors import InputError
from buildkit.scaffold import command as commandmod
from buildkit.scaffold import lockfile as lockmod
from buildkit.scaffold import packages as packagesmod
from buildkit.scaffold import ruby_version
from buildkit.source import dockerignore

ASSET_PATHS = ("app/assets", "app/javascript", "package.json")
ASSET_GEMS = (
    "propshaft",
    "sprockets-rails",
    "importmap-rails",
    "jsbundling-rails",
    "cssbundling-rails",
    "tailwindcss-rails",
    "dartsass-rails",
)
JS_LOCKFILES = ("yarn.lock", "package-lock.json", "pnpm-lock.yaml", "bun.lockb", "bun.lock")
#: What Tailwind (tailwindcss-rails) scans for class names, beyond imgbuild's default asset inputs:
#: an edit there changes the CSS, so it must move the assets key. The second group only when the
#: app has it (ViewComponent's components; tailwindcss-rails 2/3's config file).
TAILWIND_INPUTS = ("app/views", "app/helpers", "app/javascript")
TAILWIND_INPUTS_IF_PRESENT = ("app/components", "config/tailwind.config.js")


@dataclass(frozen=True, kw_only=True)
class IgnoreSuggestion:
    pattern: str  # the line to add to .dockerignore
    probe: str  # a path the line keeps out (checked against the defaults + the app's file)
    why: str
    when: tuple[str, ...] = ()  # suggested only if one of these exists in the app ("" = always)


#: What a Rails app's .dockerignore should keep out of the image. Entries imgbuild's own
#: defaults (source.dockerignore.DEFAULT_PATTERNS) already cover are checked the same way and
#: so never suggested, unless the app's file re-includes them.
IGNORE_SUGGESTIONS: tuple[IgnoreSuggestion, ...] = (
    IgnoreSuggestion(pattern="/.git", probe=".git/HEAD", why="the repository's history"),
    IgnoreSuggestion(pattern="/.env*", probe=".env", why="local secrets"),
    IgnoreSuggestion(
        pattern="/config/master.key", probe="config/master.key", why="the credentials key"
    ),
    IgnoreSuggestion(pattern="/log/*", probe="log/development.log", why="local logs"),
    IgnoreSuggestion(pattern="/tmp/*", probe="tmp/cache/x", why="caches, pids, sockets"),
    IgnoreSuggestion(
        pattern="/node_modules",
        probe="node_modules/x",
        why="the host's Node packages: built for another platform, and large",
        when=("package.json", "node_modules"),
    ),
    IgnoreSuggestion(
        pattern="/.bundle",
        probe=".bundle/config",
        why="the host's bundler settings, which would override the image's BUNDLE_* at boot",
    ),
    IgnoreSuggestion(
        pattern="/vendor/bundle",
        probe="vendor/bundle/ruby",
        why="gems installed on the host; the base image has its own",
    ),
    IgnoreSuggestion(
        pattern="/storage/*",
        probe="storage/development.sqlite3",
        why="Active Storage files and SQLite databases from development",
        when=("storage",),
    ),
    IgnoreSuggestion(pattern="/coverage", probe="coverage/index.html", why="test coverage reports"),
    IgnoreSuggestion(
        pattern="/spec",
        probe="spec/spec_helper.rb",
        why="tests, which do not run in the image (base.bundle_without has test)",
        when=("spec",),
    ),
    IgnoreSuggestion(
        pattern="/test",
        probe="test/test_helper.rb",
        why="tests, which do not run in the image (base.bundle_without has test)",
        when=("test",),
    ),
)


@dataclass(frozen=True, kw_only=True)
class Assets:
    paths: tuple[str, ...]  # of ASSET_PATHS, those the app has
    gems: tuple[str, ...]  # of ASSET_GEMS, those in Gemfile.lock
    js_lockfile: str | None
    #: imgbuild's assets layer turns on by itself (`app.assets.precompile: auto`): the app has
    #: bin/rails and app/assets, app/javascript or config/importmap.rb, not ignored
    precompiles: bool
    #: `app.assets.inputs` to write: None keeps imgbuild's defaults; Tailwind apps add what it scans
    inputs: tuple[str, ...] | None

    @property
    def node(self) -> bool:
        return "package.json" in self.paths

    @property
    def added_inputs(self) -> tuple[str, ...]:
        """The written inputs that are not among imgbuild's defaults."""
        return tuple(p for p in self.inputs or () if p not in DEFAULT_ASSET_INPUTS)


@dataclass(frozen=True, kw_only=True)
class Dockerignore:
    exists: bool
    suggestions: tuple[IgnoreSuggestion, ...]
    excludes_needed: tuple[str, ...]  # Gemfile / Gemfile.lock, which `imgbuild app` refuses


@dataclass(frozen=True, kw_only=True)
class Detection:
    root: Path
    name: str
    name_source: str  # "--name" or "the directory name"
    registry: str | None  # from --registry; None: build locally
    base_image: str
    release: str  # the Debian release the package names are for
    release_source: str
    ruby: ruby_version.RubyVersion
    lock: lockmod.Lockfile
    packages: packagesmod.Selection
    variant_processor: str | None
    command: commandmod.Command
    assets: Assets
    bootsnap: bool
    dockerignore: Dockerignore
    warnings: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """What was detected, for `imgbuild init --json`."""
        return {
            "root": str(self.root),
            "name": {"value": self.name, "source": self.name_source},
            "registry": self.registry,
            "base_image": self.base_image,
            "debian_release": {"value": self.release, "source": self.release_source},
            "ruby": {
                "version": self.ruby.version,
                "source": self.ruby.source,
                "written": self.ruby.written,
            },
            "gems": len(self.lock.gems),
            "bundler": self.lock.bundler,
            "packages": list(self.packages.packages),
            "build_packages": list(self.packages.build_packages),
            "build_args": dict(self.packages.build_args),
            "package_reasons": [
                {
                    "gem": use.gem,
                    "packages": list(use.runtime),
                    "build_packages": list(use.build),
                    "note": use.note,
                    "unsupported": use.unsupported,
                    "skipped": use.skipped,
                }
                for use in self.packages.uses
            ],
            "variant_processor": self.variant_processor,
            "command": {
                "value": self.command.command,
                "source": self.command.source,
                "procfile_web": self.command.procfile_web,
                "rewrites": list(self.command.rewrites),
                "rejected": self.command.rejected,
            },
            "port": {"value": self.command.port, "source": self.command.port_source},
            "processes": dict(self.command.processes),
            "assets": {
                "paths": list(self.assets.paths),
                "gems": list(self.assets.gems),
                "node": self.assets.node,
                "js_lockfile": self.assets.js_lockfile,
                "precompiles": self.assets.precompiles,
                "inputs": None if self.assets.inputs is None else list(self.assets.inputs),
            },
            "bootsnap": self.bootsnap,
            "dockerignore": {
                "exists": self.dockerignore.exists,
                "suggestions": [
                    {"pattern": s.pattern, "why": s.why} for s in self.dockerignore.suggestions
                ],
                "excludes_needed": list(self.dockerignore.excludes_needed),
            },
            "warnings": list(self.warnings),
        }


def detect(
    root: Path,
    *,
    name: str | None = None,
    registry: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Detection:
    """Everything init writes for the app at root; InputError when it is not a Rails app, has no
    Gemfile.lock or no full Ruby version, ConfigError for a bad --name or --registry."""
    env = env or {}
    check_rails_app(root)
    chosen_name, name_source = _name(root, name)
    lock = lockmod.parse(root / "Gemfile.lock")
    ruby = ruby_version.detect(root, lock.ruby)
    base_image = env.get("IMGBUILD_BASE_IMAGE") or schema.DEFAULT_BASE
    release, release_source = _release(base_image, env)
    processor = packagesmod.variant_processor(root) if "image_processing" in lock.gems else None
    selection = packagesmod.select(
        lock.gems,
        lock.direct,
        release=release,
        variant_processor=processor,
        git=bool(lock.git_gems),
    )
    command = commandmod.detect(root, lock.gems)
    ignore = _dockerignore(root)
    return Detection(
        root=root,
        name=chosen_name,
        name_source=name_source,
        registry=_registry(registry),
        base_image=base_image,
        release=release,
        release_source=release_source,
        ruby=ruby,
        lock=lock,
        packages=selection,
        variant_processor=processor,
        command=command,
        assets=_assets(root, lock.gems),
        bootsnap="bootsnap" in lock.gems,
        dockerignore=ignore,
        warnings=_warnings(root, lock, selection, ignore, base_image),
    )


def check_rails_app(root: Path) -> None:
    if not root.is_dir():
        raise InputError(f"{root} is not a directory; give the Rails app's root directory")
    missing = [name for name in ("Gemfile", "config/application.rb") if not (root / name).is_file()]
    if missing:
        raise InputError(
            f"{root} is not a Rails app: it has no {' and no '.join(missing)}; run imgbuild init "
            "in the app's root directory (or give it as PATH)"
        )


def registry_safe_name(directory: str) -> str:
    """A directory name as an image name: lowercase; runs of other characters become `-`, `.`
    and `_` stay where a repository name allows them; `app` when nothing is left."""
    words = re.split(r"([^a-z0-9]+)", directory.lower())
    parts: list[str] = []
    for i, word in enumerate(words):
        if i % 2 == 0:
            parts.append(word)
        elif parts and parts[-1]:
            parts.append(word if word in (".", "_", "__") or set(word) == {"-"} else "-")
    name = "".join(parts)
    name = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", name)
    return name or "app"


def _name(root: Path, given: str | None) -> tuple[str, str]:
    if given is None:
        return registry_safe_name(root.name), "the directory name"
    doc = Document(path=root, data={}, origins={"name": "--name"})
    return schema.image_name(doc, given), "--name"


def _registry(given: str | None) -> str | None:
    if given is None:
        return None
    doc = Document(path=Path("--registry"), data={}, origins={"registry": "--registry"})
    return schema.registry(doc, given)


def _release(base_image: str, env: Mapping[str, str]) -> tuple[str, str]:
    origin = "IMGBUILD_BASE_IMAGE" if env.get("IMGBUILD_BASE_IMAGE") else "imgbuild's default"
    release = packagesmod.release_of(base_image)
    if release is None:
        return packagesmod.DEFAULT_RELEASE, f"{base_image} ({origin}) names none: the default"
    return release, f"{base_image} ({origin})"


def _assets(root: Path, gems: frozenset[str]) -> Assets:
    rules = dockerignore.rules_for_context(root)
    # As the app layer decides it (chain/layers.py): the path exists and the context keeps it.
    precompiles = assetsmod.enabled(
        AssetsConfig(), lambda rel: (root / rel).exists() and not rules.is_ignored(rel)
    )
    inputs = None
    if "tailwindcss-rails" in gems:
        present = tuple(p for p in TAILWIND_INPUTS_IF_PRESENT if (root / p).exists())
        inputs = tuple(dict.fromkeys((*DEFAULT_ASSET_INPUTS, *TAILWIND_INPUTS, *present)))
    return Assets(
        paths=tuple(p for p in ASSET_PATHS if (root / p).exists()),
        gems=tuple(g for g in ASSET_GEMS if g in gems),
        js_lockfile=next((f for f in JS_LOCKFILES if (root / f).is_file()), None),
        precompiles=precompiles,
        inputs=inputs,
    )


def _dockerignore(root: Path) -> Dockerignore:
    rules = dockerignore.rules_for_context(root)
    suggestions = tuple(
        s
        for s in IGNORE_SUGGESTIONS
        if (not s.when or any((root / w).exists() for w in s.when))
        and not rules.is_ignored(s.probe)
    )
    needed = tuple(name for name in ("Gemfile", "Gemfile.lock") if rules.is_ignored(name))
    return Dockerignore(
        exists=(root / ".dockerignore").is_file(), suggestions=suggestions, excludes_needed=needed
    )


def _warnings(
    root: Path,
    lock: lockmod.Lockfile,
    selection: packagesmod.Selection,
    ignore: Dockerignore,
    base_image: str,
) -> tuple[str, ...]:
    warnings = []
    if not lockmod.installs_on_linux(lock):
        warnings.append(
            f"Gemfile.lock lists only the platforms {', '.join(lock.platforms)}: bundle install "
            "on Linux refuses it; run `bundle lock --add-platform x86_64-linux aarch64-linux` "
            "and commit Gemfile.lock"
        )
    for source in lock.path_sources:
        warnings.append(
            f"Gemfile.lock installs gems from the path {source!r}: the base layer's context "
            "holds only the Gemfile, Gemfile.lock and vendor/cache, so bundle install will not "
            "find them; vendor them (bundle cache --all) or use your own base.dockerfile"
        )
    for use in selection.uses:
        if use.unsupported:
            warnings.append(f"{use.gem}: {use.note}")
    for name in ignore.excludes_needed:
        warnings.append(
            f"{root / '.dockerignore'} excludes {name}, which the app needs at run time: "
            "`imgbuild app` refuses to build until that line goes"
        )
    if packagesmod.release_of(base_image) is None and selection.packages + selection.build_packages:
        warnings.append(
            f"the base image {base_image} names no Debian release; the package names are "
            f"Debian {packagesmod.DEFAULT_RELEASE}'s: check them"
        )
    return tuple(warnings)
