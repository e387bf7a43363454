"""imgbuild.yaml + IMGBUILD_* env + command-line flags, resolved once into frozen dataclasses.

Precedence, lowest to highest (docs/config.md):
    built-in defaults < imgbuild.yaml < IMGBUILD_* environment < command-line flags
Strings in the file may use ${VAR} / ${VAR:-default}; paths are relative to the file's directory
and may start with ~. Unknown keys are rejected with a "did you mean".
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from buildkit.config import apps as apps_section
from buildkit.config import budgets as budgets_section
from buildkit.config import codebuild as codebuild_section
from buildkit.config import deploy as deploy_section
from buildkit.config import ecr as ecr_section
from buildkit.config import envvars, schema
from buildkit.config import verify as verify_section
from buildkit.config.yamlsrc import Document, load
from buildkit.errors import ConfigError, InputError

DEFAULT_CONFIG_NAME = "imgbuild.yaml"
LAYERS = ("ruby", "base", "app")
#: Rails' usual homes of images, fonts and precompiled assets: big, and rarely edited.
DEFAULT_BULK = ("app/assets/images", "app/assets/fonts", "public/assets", "vendor/assets")
#: What `rails assets:precompile` reads (app.assets.inputs, .dockerignore syntax): only a change
#: to a file these match runs it again. Gemfile.lock is also in the base key, which it chains on.
DEFAULT_ASSET_INPUTS = (
    "app/assets",
    "app/javascript",
    "vendor/javascript",
    "vendor/assets",
    "config/importmap.rb",
    "config/initializers/assets.rb",
    "package.json",
    "yarn.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "bun.lockb",
    "Gemfile.lock",
    "tailwind.config.js",
    "postcss.config.js",
)

#: IMGBUILD_* variables that override top-level keys (flags override these in turn).
ENV_OVERRIDES = {
    "IMGBUILD_REGISTRY": "registry",
    "IMGBUILD_NAME": "name",
    "IMGBUILD_BASE_IMAGE": "base_image",
    "IMGBUILD_PLATFORM": "platform",
}


@dataclass(frozen=True, kw_only=True)
class RubySource:
    """An explicit Ruby release tarball (mirror or offline); None means ruby-build's definition."""

    url: str | None = None
    path: Path | None = None
    sha256: str | None = None


@dataclass(frozen=True, kw_only=True)
class LayerCommon:
    """What every layer may override: its Dockerfile and extra build args."""

    dockerfile: Path | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RubyConfig(LayerCommon):
    version: str
    configure_opts: tuple[str, ...] = ("--disable-install-doc",)
    jemalloc: bool = False
    yjit: bool = False
    source: RubySource | None = None
    ruby_build: str = schema.DEFAULT_RUBY_BUILD
    # The Ruby image's repository when it is not `<name>-ruby`: `ruby.repository`, else
    # `ecr.repositories.ruby`, else (in an `apps:` config) the apps' shared one.
    repository: str | None = None

    @property
    def effective_configure_opts(self) -> tuple[str, ...]:
        extra = (("--with-jemalloc",) if self.jemalloc else ()) + (
            ("--enable-yjit",) if self.yjit else ()
        )
        return self.configure_opts + tuple(o for o in extra if o not in self.configure_opts)


@dataclass(frozen=True, kw_only=True)
class BaseConfig(LayerCommon):
    packages: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    gemfile: str = "Gemfile"
    bundle_without: tuple[str, ...] = ("development", "test")
    secrets: tuple[str, ...] = ()  # env var names handed to bundle install as a BuildKit secret


@dataclass(frozen=True, kw_only=True)
class AssetsConfig:
    """`app.assets`: precompiling the app's assets in an image of their own (applayer/assets.py)."""

    precompile: bool | None = None  # None: auto (bin/rails and app/assets, app/javascript, ...)
    inputs: tuple[str, ...] = DEFAULT_ASSET_INPUTS
    command: str = "bin/rails assets:precompile"
    output: str = "public/assets"
    packages: tuple[str, ...] = ()  # extra Debian packages of the precompile stage


@dataclass(frozen=True, kw_only=True)
class AppConfig(LayerCommon):
    context: Path
    command: str = "bundle exec rails server -b 0.0.0.0"
    # Process type -> command, `web` first (config.deploy): one image, a deploy runs each from
    # the same digest. `web` is always `command`, the image's CMD, whatever is passed here.
    processes: Mapping[str, str] = field(default_factory=dict)
    port: int = 3000
    user: str = "app"
    source_url: str | None = None
    # Large, rarely changing files copied in layers of their own under the source, so a source
    # change rebuilds and pushes only the source (layers.BulkSpec). [] turns it off.
    bulk: tuple[str, ...] = DEFAULT_BULK
    # Build the source as a snapshot + the files changed since it (applayer/snapshot.py).
    # False: one step.
    delta: bool = True
    assets: AssetsConfig = field(default_factory=AssetsConfig)

    def __post_init__(self) -> None:
        # `web` is the command by definition: a `dataclasses.replace(app, command=...)` moves it
        # too. Read-only, like every other value of a frozen config.
        others = {name: cmd for name, cmd in self.processes.items() if name != deploy_section.WEB}
        merged = MappingProxyType({deploy_section.WEB: self.command, **others})
        object.__setattr__(self, "processes", merged)


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole resolved configuration; nothing else reads the file or the environment."""

    path: Path
    root: Path
    name: str
    registry: str | None
    base_image: str
    platform: str | None
    builder: str | None = None  # a buildx builder by name (BUILDX_BUILDER over `builder:`)
    builder_origin: str = ""  # where the name came from, for messages
    ruby: RubyConfig
    base: BaseConfig
    app: AppConfig
    cache_dir: Path
    budgets: budgets_section.Budgets = field(default_factory=budgets_section.Budgets)
    codebuild: codebuild_section.CodeBuildSettings = field(
        default_factory=codebuild_section.CodeBuildSettings
    )
    ecr: ecr_section.EcrSettings = field(default_factory=ecr_section.EcrSettings)
    tags: ecr_section.TagSettings = field(default_factory=ecr_section.TagSettings)
    verify: verify_section.VerifySettings = field(default_factory=verify_section.VerifySettings)
    kustomize: deploy_section.KustomizeSettings = field(
        default_factory=deploy_section.KustomizeSettings
    )
    app_key: str | None = None  # the key under `apps:` this config is, None without `apps:`

    def layer(self, name: str) -> LayerCommon:
        layer: LayerCommon = {"ruby": self.ruby, "base": self.base, "app": self.app}[name]
        return layer


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Command-line flags that override the file and the environment."""

    registry: str | None = None


def find_config(explicit: str | None, cwd: Path | None = None) -> Path:
    """The config to use: -c FILE, else ./imgbuild.yaml."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    if not candidate.is_file():
        raise ConfigError(
            f"no {DEFAULT_CONFIG_NAME} in {candidate.parent}; create one (see docs/config.md) "
            "or pass -c FILE"
        )
    return candidate


def resolve(
    path: Path,
    overrides: Overrides | None = None,
    env: Mapping[str, str] | None = None,
    app: str | None = None,
) -> Config:
    """Load, validate and resolve the config at path. A config with `apps:` needs `app` (its
    key under `apps:`); `resolve_all` gives every app."""
    configs = resolve_all(path, overrides, env, apps=(app,) if app else ())
    if len(configs) > 1:
        keys = ", ".join(c.app_key or c.name for c in configs)
        raise ConfigError(
            f"{path}: this config describes several apps ({keys}); pick one with --app NAME"
        )
    return configs[0]


def resolve_all(
    path: Path,
    overrides: Overrides | None = None,
    env: Mapping[str, str] | None = None,
    apps: tuple[str, ...] = (),
) -> tuple[Config, ...]:
    """One Config per app, in file order (a config without `apps:` is one app); `apps` selects
    some by their key under `apps:` (an unknown one is an error)."""
    env = dict(os.environ) if env is None else dict(env)
    doc = load(path, env)
    schema.check_keys(doc, {**_keys(), "apps": None})
    if not apps_section.has_apps(doc):
        if apps:
            raise ConfigError(f"{path}: --app {apps[0]} given, but this config has no 'apps:'")
        return (_resolve_doc(doc, overrides, env),)
    _env_overrides(doc, env, keys={"name"})
    shared_ruby = apps_section.shared_ruby_repository(doc)
    chosen = apps_section.select(apps_section.split(doc, _keys()), apps, str(path))
    return tuple(_resolve_doc(a.doc, overrides, env, a.key, shared_ruby) for a in chosen)


def _env_overrides(doc: Document, env: Mapping[str, str], keys: set[str]) -> None:
    # An empty value is an error, never "not given" (envvars): a CI script's unset variable
    # must not fall back to the file's registry.
    for var, key in ENV_OVERRIDES.items():
        given = envvars.value(env, var)
        if given is not None and key in keys:
            doc.data[key] = given
            doc.origins[key] = var


def _resolve_doc(
    doc: Document,
    overrides: Overrides | None,
    env: Mapping[str, str],
    app_key: str | None = None,
    shared_ruby: str | None = None,
) -> Config:
    """One app's Config from its document (the whole file, or one app's merged view)."""
    # In an `apps:` config IMGBUILD_NAME named the shared Ruby repository's prefix instead.
    keys = {k for k in ENV_OVERRIDES.values() if app_key is None or k != "name"}
    _env_overrides(doc, env, keys)
    data = doc.data
    registry = envvars.flag_value("--registry", overrides.registry if overrides else None)
    if registry is not None:
        data["registry"] = registry
        doc.origins["registry"] = "--registry"
    # BUILDX_BUILDER is docker's own variable: an empty one is unset, as docker reads it.
    if env.get("BUILDX_BUILDER", "").strip():
        data["builder"] = env["BUILDX_BUILDER"].strip()
        doc.origins["builder"] = "BUILDX_BUILDER"
    builder = schema.builder_name(doc, data.get("builder"))
    path = doc.path
    root = path.parent
    ecr = ecr_section.parse(doc, data.get("ecr"), root)
    return Config(
        path=path,
        root=root,
        name=schema.image_name(doc, data.get("name", root.name)),
        registry=schema.registry(doc, data.get("registry")),
        base_image=schema.image_ref(doc, "base_image", data.get("base_image", schema.DEFAULT_BASE)),
        platform=schema.optional_str(doc, "platform", data.get("platform")),
        builder=builder,
        builder_origin=doc.where("builder") if builder else "",
        ruby=_ruby(doc, data.get("ruby") or {}, root, ecr.repositories.get("ruby"), shared_ruby),
        base=_base(doc, data.get("base") or {}, root),
        app=_app(doc, data.get("app") or {}, root),
        cache_dir=_cache_dir(env),
        budgets=budgets_section.parse(doc, data.get("budgets"), root),
        codebuild=codebuild_section.parse(doc, data.get("codebuild"), root),
        ecr=ecr,
        tags=ecr_section.parse_tags(doc, data.get("tags")),
        verify=verify_section.parse(
            doc, data.get("verify"), root, rails=_is_rails(data, root), present="verify" in data
        ),
        kustomize=deploy_section.parse_kustomize(doc, data.get("kustomize")),
        app_key=app_key,
    )


def _is_rails(data: Mapping[str, Any], root: Path) -> bool:
    """The app context has bin/rails (checked before app.context is: a bad one fails there)."""
    app = data.get("app") if isinstance(data.get("app"), dict) else {}
    context = (app or {}).get("context", ".")
    return isinstance(context, str) and (schema.resolve_path(context, root) / "bin/rails").is_file()


def _keys() -> dict[str, Any]:
    """schema.KEYS with each feature section's own keys plugged in."""
    return {
        **schema.KEYS,
        "budgets": budgets_section.KEYS or None,
        "codebuild": codebuild_section.KEYS or None,
        "ecr": ecr_section.KEYS,
        "tags": ecr_section.TAG_KEYS,
        "verify": verify_section.KEYS,
        "kustomize": deploy_section.KUSTOMIZE_KEYS,
    }


def _cache_dir(env: Mapping[str, str]) -> Path:
    """$IMGBUILD_CACHE_DIR, else $XDG_CACHE_HOME/imgbuild (an empty XDG_CACHE_HOME is unset, as
    the XDG spec says), else ~/.cache/imgbuild."""
    explicit = envvars.value(env, "IMGBUILD_CACHE_DIR")
    if explicit is not None:
        return Path(explicit).expanduser()
    return (Path(env.get("XDG_CACHE_HOME") or "~/.cache") / "imgbuild").expanduser()


def _common(doc: Document, section: str, raw: Mapping[str, Any], root: Path) -> dict[str, Any]:
    dockerfile = raw.get("dockerfile")
    return {
        "dockerfile": schema.existing_file(doc, f"{section}.dockerfile", dockerfile, root)
        if dockerfile is not None
        else None,
        "build_args": schema.str_mapping(doc, f"{section}.build_args", raw.get("build_args", {})),
    }


def _ruby(
    doc: Document,
    raw: Mapping[str, Any],
    root: Path,
    ecr_repository: str | None,
    shared: str | None,
) -> RubyConfig:
    if "version" not in raw:
        raise ConfigError(f'{doc.where("ruby")}: ruby.version is required (e.g. "3.3.8")')
    source = raw.get("source")
    return RubyConfig(
        version=schema.ruby_version(doc, raw["version"]),
        configure_opts=schema.str_list(
            doc, "ruby.configure_opts", raw.get("configure_opts", ["--disable-install-doc"])
        ),
        jemalloc=schema.boolean(doc, "ruby.jemalloc", raw.get("jemalloc", False)),
        yjit=schema.boolean(doc, "ruby.yjit", raw.get("yjit", False)),
        source=_ruby_source(doc, source, root) if source is not None else None,
        ruby_build=schema.ruby_build(doc, raw.get("ruby_build", schema.DEFAULT_RUBY_BUILD), root),
        repository=apps_section.ruby_repository(doc, raw.get("repository"), ecr_repository, shared),
        **_common(doc, "ruby", raw, root),
    )


def _ruby_source(doc: Document, raw: Any, root: Path) -> RubySource:
    where = doc.where("ruby.source")
    if not isinstance(raw, dict) or ("url" in raw) == ("path" in raw):
        raise ConfigError(f"{where}: ruby.source needs exactly one of 'url' or 'path'")
    sha = raw.get("sha256")
    if sha is not None:
        sha = schema.sha256_hex(doc, "ruby.source.sha256", sha)
    if "url" in raw:
        if sha is None:
            raise ConfigError(f"{where}: ruby.source.url needs its sha256 (sha256sum the tarball)")
        return RubySource(url=schema.tarball_url(doc, raw["url"]), sha256=sha)
    path = schema.existing_file(doc, "ruby.source.path", raw["path"], root)
    if not path.name.endswith((".tar.gz", ".tgz", ".tar.bz2")):
        raise InputError(
            f"{doc.where('ruby.source.path')}: {path.name} is not .tar.gz or .tar.bz2, the only "
            "formats ruby-build extracts; recompress it (xz -dc X.tar.xz | gzip -n > X.tar.gz)"
        )
    return RubySource(path=path, sha256=sha)


def _base(doc: Document, raw: Mapping[str, Any], root: Path) -> BaseConfig:
    return BaseConfig(
        packages=schema.package_list(doc, "base.packages", raw.get("packages", [])),
        build_packages=schema.package_list(
            doc, "base.build_packages", raw.get("build_packages", [])
        ),
        gemfile=schema.relative_name(doc, "base.gemfile", raw.get("gemfile", "Gemfile")),
        bundle_without=schema.str_list(
            doc, "base.bundle_without", raw.get("bundle_without", ["development", "test"])
        ),
        secrets=schema.env_names(doc, "base.secrets", raw.get("secrets", [])),
        **_common(doc, "base", raw, root),
    )


def _app(doc: Document, raw: Mapping[str, Any], root: Path) -> AppConfig:
    context = schema.existing_dir(doc, "app.context", raw.get("context", "."), root)
    command = raw.get("command", AppConfig.command)
    if isinstance(command, list):
        command = shlex.join(schema.str_list(doc, "app.command", command))
    web, processes = deploy_section.processes(
        doc, raw, schema.nonempty_str(doc, "app.command", command)
    )
    return AppConfig(
        context=context,
        command=web,
        processes=dict(processes),
        port=schema.port(doc, raw.get("port", 3000)),
        user=schema.unix_name(doc, "app.user", raw.get("user", "app")),
        source_url=schema.optional_str(doc, "app.source_url", raw.get("source_url")),
        bulk=schema.relative_paths(doc, "app.bulk", raw.get("bulk", list(DEFAULT_BULK))),
        delta=schema.boolean(doc, "app.delta", raw.get("delta", True)),
        assets=_assets(doc, raw.get("assets") or {}),
        **_common(doc, "app", raw, root),
    )


def _assets(doc: Document, raw: Mapping[str, Any]) -> AssetsConfig:
    precompile = raw.get("precompile", "auto")
    if precompile != "auto" and not isinstance(precompile, bool):
        raise ConfigError(
            f"{doc.where('app.assets.precompile')}: 'app.assets.precompile' must be auto, true "
            f"or false, not {precompile!r}"
        )
    command = raw.get("command", AssetsConfig.command)
    if isinstance(command, list):
        command = shlex.join(schema.str_list(doc, "app.assets.command", command))
    output = schema.nonempty_str(doc, "app.assets.output", raw.get("output", AssetsConfig.output))
    return AssetsConfig(
        precompile=None if precompile == "auto" else precompile,
        inputs=schema.relative_paths(
            doc, "app.assets.inputs", raw.get("inputs", list(DEFAULT_ASSET_INPUTS))
        ),
        command=schema.nonempty_str(doc, "app.assets.command", command),
        output=schema.relative_paths(doc, "app.assets.output", [output])[0],
        packages=schema.package_list(doc, "app.assets.packages", raw.get("packages", [])),
    )
