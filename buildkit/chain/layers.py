"""The three layers of the chain as content-addressed build specs.

A layer's key is a digest of its parent's key, its Dockerfile, its declared inputs, its build args
and platform. The image is tagged with the first 12 hex digits of the key, so "is this layer up to
date?" becomes "does that tag exist?", on any machine.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from buildkit import cachedir
from buildkit.applayer import assets as assetsmod
from buildkit.applayer import bulk as bulkmod
from buildkit.applayer import snapshot as deltamod
from buildkit.chain.model import LayerSpec
from buildkit.config import deploy
from buildkit.config.loading import Config
from buildkit.engine import reference
from buildkit.errors import InputError
from buildkit.source import dockerignore, hashing, lockshape
from buildkit.source.keys import compute_key

_IMAGES_DIRS = (
    Path(__file__).parents[1] / "_images",  # installed wheel (pyproject force-include)
    Path(__file__).parents[2] / "images",  # source checkout / editable install
)


def shipped_dockerfile(layer: str) -> Path:
    """The default Dockerfile imgbuild ships for a layer."""
    for directory in _IMAGES_DIRS:
        candidate = directory / layer / "Dockerfile"
        if candidate.is_file():
            return candidate
    raise InputError(f"imgbuild's own {layer} Dockerfile is missing; reinstall imgbuild")


def repository_name(config: Config, layer: str) -> str:
    """The repository path without the registry host (ECR names may be overridden; the Ruby
    image's may be shared by several apps: config.ruby.repository)."""
    if layer == "ruby" and config.ruby.repository:
        return config.ruby.repository
    return config.ecr.repositories.get(layer) or f"{config.name}-{layer}"


def repository(config: Config, layer: str) -> str:
    prefix = f"{config.registry}/" if config.registry and config.registry != "ecr" else ""
    return f"{prefix}{repository_name(config, layer)}"


def repository_path(config: Config, layer: str) -> str:
    """The repository as its registry names it (in URLs, ECR's API, IAM ARNs): the registry's
    path prefix and the name, `team/shop-app` for registry.example.com/team."""
    if not config.registry or config.registry == "ecr":
        return repository_name(config, layer)
    prefix = reference.split_registry(config.registry)[1]
    name = repository_name(config, layer)
    return f"{prefix}/{name}" if prefix else name


def file_digest(path: Path) -> str:
    return "sha256:" + hashing.hash_file(path)


def _common_inputs(config: Config, layer: str, dockerfile: Path) -> dict[str, str]:
    inputs = {"Dockerfile": file_digest(dockerfile), "platform": config.platform or "default"}
    for name, value in sorted(config.layer(layer).build_args.items()):
        inputs[f"build arg {name}"] = value
    return inputs


def _dockerfile(config: Config, layer: str) -> Path:
    return config.layer(layer).dockerfile or shipped_dockerfile(layer)


def ruby_spec(config: Config, files: hashing.DigestCache | None = None) -> LayerSpec:
    ruby = config.ruby
    dockerfile = _dockerfile(config, "ruby")
    inputs = _common_inputs(config, "ruby", dockerfile)
    inputs["ruby version"] = ruby.version
    inputs["configure options"] = " ".join(ruby.effective_configure_opts)
    inputs["base image"] = config.base_image
    inputs["ruby source"] = _ruby_source_input(config, files)
    inputs["ruby-build"] = _ruby_build_input(config)
    build_args = {
        "BASE_IMAGE": config.base_image,
        "RUBY_CONFIGURE_OPTS": " ".join(ruby.effective_configure_opts),
        "RUBY_DEFINITION": f"/opt/ruby-defs/{ruby.version}" if ruby.source else ruby.version,
        **_extra_build_packages(ruby.jemalloc, ruby.yjit),
        **ruby.build_args,
    }
    return LayerSpec(
        name="ruby",
        repository=repository(config, "ruby"),
        key=compute_key("ruby", None, inputs),
        parent=None,
        dockerfile=dockerfile,
        context=None,
        ignore=(),
        build_args=build_args,
        inputs=inputs,
    )


def _extra_build_packages(jemalloc: bool, yjit: bool) -> dict[str, str]:
    packages = (["libjemalloc-dev"] if jemalloc else []) + (["rustc"] if yjit else [])
    return {"EXTRA_BUILD_PACKAGES": " ".join(packages)} if packages else {}


def _ruby_source_input(config: Config, files: hashing.DigestCache | None = None) -> str:
    source = config.ruby.source
    if source is None:
        return "ruby-build definition"
    if source.path is not None:
        actual = files.file_digest(source.path) if files else hashing.hash_file(source.path)
        if source.sha256 and source.sha256 != actual:
            raise InputError(
                f"{config.path}: ruby.source.path {source.path} has sha256 {actual}, not the "
                f"configured {source.sha256}; fix the checksum or the file"
            )
        return f"sha256:{actual}"
    return f"sha256:{source.sha256}"


def _ruby_build_input(config: Config) -> str:
    ruby_build = Path(config.ruby.ruby_build)
    if ruby_build.is_absolute() and ruby_build.is_dir():
        # Its own digest cache (keyed by the checkout's path): 600+ files re-read on every
        # run cost a no-op ~40 ms.
        cache = hashing.DigestCache(cachedir.ruby_build_digests(config.cache_dir, ruby_build))
        tree = hashing.hash_tree(ruby_build, dockerignore.IgnoreRules([]), cache=cache)
        cache.save()
        return f"tree:{tree.digest}"
    if ruby_build.is_absolute():
        return file_digest(ruby_build)
    return config.ruby.ruby_build


def base_spec(
    config: Config, parent: LayerSpec, cache: hashing.DigestCache | None = None
) -> LayerSpec:
    base = config.base
    dockerfile = _dockerfile(config, "base")
    gemfile, lockfile = base.gemfile, f"{base.gemfile}.lock"
    context = config.app.context
    for name in (gemfile, lockfile):
        if not (context / name).is_file():
            raise InputError(
                f"{context / name} is missing; the base layer installs gems from {gemfile} and "
                f"{lockfile} (run `bundle lock` and commit the lockfile)"
            )
    lockshape.check(context / lockfile)  # not a lockfile: say so now, not in bundler later
    include = [gemfile, lockfile, "vendor/cache"]
    # The app's digest cache (same relpaths): vendor/cache is not re-read on every run.
    tree = hashing.hash_tree(context, dockerignore.IgnoreRules([]), only=include, cache=cache)
    inputs = _common_inputs(config, "base", dockerfile)
    inputs["OS packages"] = " ".join(base.packages)
    inputs["build packages"] = " ".join(base.build_packages)
    inputs["BUNDLE_WITHOUT"] = ":".join(base.bundle_without)
    key = compute_key("base", parent.key, {**inputs, "tree": tree.digest})
    inputs.update({f"file:{path}": digest for path, digest in tree.files.items()})
    build_args = {
        "RUBY_IMAGE": parent.image,
        "PACKAGES": " ".join(base.packages),
        "BUILD_PACKAGES": " ".join(base.build_packages),
        "BUNDLE_WITHOUT": ":".join(base.bundle_without),
        "GEMFILE": gemfile,
        "BUNDLE_CACHE_KEY": _bundle_cache_key(config, parent),
        "APP_USER": config.app.user,
        **base.build_args,
    }
    return LayerSpec(
        name="base",
        repository=repository(config, "base"),
        key=key,
        parent=parent,
        dockerfile=dockerfile,
        context=context,
        ignore=("*", *(f"!{path}" for path in include)),
        build_args=build_args,
        inputs=inputs,
    )


def _bundle_cache_key(config: Config, parent: LayerSpec) -> str:
    """Where in the shared gem cache mount this app's gems live: per app, Ruby and build libs."""
    packages = hashlib.sha256(" ".join(config.base.build_packages).encode()).hexdigest()[:8]
    key = f"{config.name.replace('/', '_')}-{parent.tag}-{packages}"
    # Another set of groups (verify's test variant) gets a cache of its own: `bundle clean` in
    # one would otherwise remove the other's gems each time.
    if config.base.bundle_without != ("development", "test"):
        groups = hashlib.sha256(":".join(config.base.bundle_without).encode()).hexdigest()[:6]
        key += f"-w{groups}"
    return key


#: Where Rails writes at run time. imgbuild's base image creates them for the app user; with
#: imgbuild's own app Dockerfile they and their contents stay out of the context even when the
#: app's .dockerignore keeps a `.keep` (Rails' does): `COPY . /app/` would make them root's again.
RUNTIME_DIRS = ("tmp", "log", "storage")
#: Both forms: after a `!tmp/.keep`, BuildKit (and IgnoreRules, like it) still sends tmp/.keep
#: past a later `tmp` (moby judges a file by its parent's results, and skips a pattern that
#: could not change the parent's), so `tmp/**` takes the contents and `tmp` the directory.
RUNTIME_PATTERNS = tuple(p for d in RUNTIME_DIRS for p in (d, f"{d}/**"))


def app_spec(config: Config, parent: LayerSpec, cache: hashing.DigestCache | None) -> LayerSpec:
    app = config.app
    dockerfile = _dockerfile(config, "app")
    # After the app's own patterns, so that no `!` line brings them back. An app Dockerfile of
    # the app's own decides for itself (Rails' own `chown -R rails log tmp` needs them copied).
    runtime = RUNTIME_PATTERNS if app.dockerfile is None else ()
    rules = dockerignore.rules_for_context(app.context, extra=runtime)
    patterns = (
        *dockerignore.DEFAULT_PATTERNS,
        *dockerignore.read_dockerignore(app.context / ".dockerignore"),
        *runtime,
    )
    for needed in (config.base.gemfile, f"{config.base.gemfile}.lock"):
        if rules.is_ignored(needed):
            raise InputError(
                f"{app.context / '.dockerignore'} excludes {needed}, which the app needs at run "
                "time (bundler/setup reads it); remove that pattern"
            )
    dockerfile_text = dockerfile.read_text(encoding="utf-8")
    with_assets = _with_assets(config, dockerfile, dockerfile_text, rules)
    if with_assets:  # only then: an app without assets keeps its key
        # Its compiled output comes from the assets image: the output and node_modules stay out
        # of the app's context, and so of its digest.
        rules = rules.extended(assetsmod.app_exclusions(app.assets))
    tree = hashing.hash_tree(app.context, rules, cache=cache, empty_dirs=True)
    inputs = _common_inputs(config, "app", dockerfile)
    inputs.update({"command": app.command, "port": str(app.port), "user": app.user})
    inputs.update(_process_inputs(config))
    assets = None
    if with_assets:
        assets = assetsmod.spec_for(
            settings=app.assets,
            files=tree.files,
            base_key=parent.key,
            app_dockerfile_text=dockerfile_text,
            repository=repository(config, "app"),
            ignore=patterns,
        )
        assert assets is not None  # _with_assets found where the Dockerfile copies the app
        inputs["assets"] = f"sha256:{assets.key}"
        patterns = (*patterns, *assetsmod.app_exclusions(app.assets))
    bulk = bulkmod.spec_for(
        paths=app.bulk,
        files=tree.files,
        base_key=assets.key if assets else parent.key,
        app_dockerfile_text=dockerfile_text,
        repository=repository(config, "app"),
        ignore=patterns,
    )
    if bulk is not None:  # only then: an app without bulk files keeps its key
        inputs["bulk paths"] = " ".join(bulk.paths)
        patterns = (*patterns, *bulk.exclusions())
    key = compute_key("app", parent.key, {**inputs, "tree": tree.digest})
    inputs.update({f"file:{path}": digest for path, digest in tree.files.items()})
    inputs.update({f"file:{path}/": "dir" for path in tree.empty_dirs})  # plan: "log/ added"
    build_args = {
        "BASE_IMAGE": (bulk or assets or parent).image,
        "APP_COMMAND": app.command,
        "APP_PORT": str(app.port),
        "APP_USER": app.user,
        **app.build_args,
    }
    prefix = deltamod.snapshot_prefix(dockerfile_text) if app.delta else None
    delta = None
    if prefix is not None:
        delta = deltamod.DeltaSpec(
            repository=repository(config, "app"),
            prefix=prefix,
            frame=deltamod.frame_digest(prefix, build_args["BASE_IMAGE"], build_args),
            tree=tree.files,
            bulk=bulk.paths if bulk else (),
        )
    return LayerSpec(
        name="app",
        repository=repository(config, "app"),
        key=key,
        parent=parent,
        dockerfile=dockerfile,
        context=app.context,
        ignore=patterns,
        build_args=build_args,
        inputs=inputs,
        assets=assets,
        bulk=bulk,
        delta=delta,
        processes=tuple(app.processes.items()),
    )


def _process_inputs(config: Config) -> dict[str, str]:
    """The process types, which the app image carries as labels (chain.labels): their names,
    and each command but web's (that is `command`), so "process worker changed" says why."""
    names = {"processes": " ".join(config.app.processes)}
    commands = {f"process {n}": c for n, c in config.app.processes.items() if n != deploy.WEB}
    return names | commands


def _with_assets(
    config: Config, dockerfile: Path, text: str, rules: dockerignore.IgnoreRules
) -> bool:
    """Whether the app's assets are precompiled in an image of their own (applayer/assets.py):
    asked for, and the app Dockerfile says where its files go."""
    context = config.app.context
    settings = config.app.assets
    if not assetsmod.enabled(
        settings, lambda rel: (context / rel).exists() and not rules.is_ignored(rel)
    ):
        return False
    if assetsmod.destination(text) is not None:
        return True
    if settings.precompile:
        raise InputError(
            f"{config.path}: app.assets.precompile is true, but {dockerfile} has no single "
            "`COPY . <dest>` with an absolute destination (or after a literal WORKDIR) to put "
            "the compiled assets under; copy the context that way or set precompile: false"
        )
    return False  # auto: a Dockerfile of its own precompiles in its own way


def chain(config: Config, cache: hashing.DigestCache | None = None) -> list[LayerSpec]:
    """All three layers, in build order."""
    ruby = ruby_spec(config, cache)  # same cache: absolute-path keys never clash with relpaths
    base = base_spec(config, ruby, cache)
    return [ruby, base, app_spec(config, base, cache)]
