"""The apps under benchmark and the commands of each side: imgbuild, raw docker, naive.

Everything lives under ~/.cache/imgbuild-dev/bench/<label>/ with its own imgbuild cache dir and
its own registry repositories (bench-*), so the shared daemon, registry and the repo's example
app are never modified.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gen_app
import tools
from tools import BENCH_HOME, DOCKER, REGISTRY, REPO_ROOT, VENV, BenchError, dev_env, run

NAIVE_DOCKERFILE = Path(__file__).with_name("naive") / "Dockerfile"
RAILS_EXAMPLE = REPO_ROOT / "examples" / "rails"
STYLESHEET = "app/assets/stylesheets/application.css"  # the Rails app's; edited by R1
NAIVE_RUBYSRC = f"{REGISTRY}/bench-naive-rubysrc:3.3.8"  # named in naive/Dockerfile
RUBY_VERSION = "3.3.8"
# The ruby layer is the same image for every app (same key), and its cold build is a ~4 min
# Ruby compile (far more under load): measured once per run and shared by the apps' P3 peers.
_cold_ruby_seconds: list[float] = []
SHARED_GEM_MOUNT = "id=imgbuild-bundle,"  # the gem cache mount of images/base/Dockerfile


@dataclass
class BenchApp:
    label: str  # "example" or "large"
    name: str  # imgbuild config name, prefixes the registry repositories
    workdir: Path
    env: dict[str, str] = field(default_factory=dev_env)
    edit_target: str = "app/models/user.rb"
    extras: list[str] = field(default_factory=list)
    last_output: str = ""  # the last `imgbuild` run's combined output
    last_raw_assets_output: str = ""  # the raw peer's last assets build's output

    @property
    def app(self) -> Path:
        return self.workdir / "app"

    def __post_init__(self) -> None:
        self.env["IMGBUILD_CACHE_DIR"] = str(self.workdir / "imgbuild-cache")
        # One-shot processes unless a case asks for the resident server (`server()`).
        self.env["IMGBUILD_SERVER"] = "off"
        self.env["IMGBUILD_SERVER_DIR"] = str(self.workdir / "server")

    @property
    def peer_env(self) -> dict[str, str]:
        """The raw and naive peers' environment: their own buildx state. BuildKit keeps a
        context's last transfer per client node and directory, so two tools alternately
        sending the same app directory with different exclude sets (imgbuild splits the bulk
        out, the peers do not) would each re-sync against the other's state, a cost neither
        has when used alone (measured: 0.6 s of transfer became 0.8-2 s, both ways)."""
        return {**self.env, "BUILDX_CONFIG": str(self.workdir / "peer-buildx")}

    @contextlib.contextmanager
    def server(self) -> Iterator[dict[str, str]]:
        """A running `imgbuild server` for this app's runs (as after a developer's `imgbuild
        server start`); yields the extra environment that lets `imgbuild` reach it."""
        on = {"IMGBUILD_SERVER": ""}
        imgbuild = str(VENV / "bin" / "imgbuild")
        run([imgbuild, "server", "start", "--idle", "30"], env={**self.env, **on})
        try:
            yield on
        finally:
            run([imgbuild, "server", "stop"], env={**self.env, **on})

    # ---- imgbuild side ---------------------------------------------------------------------

    def imgbuild(self, *args: str, extra_env: dict[str, str] | None = None) -> tuple[float, Any]:
        """Run `imgbuild <args> --json`; return (wall seconds, parsed --json document). Its log
        (stderr, before the document) stays in `last_output`."""
        env = {**self.env, **(extra_env or {})}
        seconds, out = run([str(VENV / "bin" / "imgbuild"), *args, "--json"], env=env, cwd=self.app)
        self.last_output = out
        start = out.rfind("\n{\n")
        doc = json.loads(out[start + 1 :]) if start >= 0 else {}
        return seconds, doc

    def specs(self) -> dict[str, Any]:
        """imgbuild's own layer specs (build args, ignore rules, contexts) for the raw peer."""
        from buildkit.chain import layers
        from buildkit.config import loading as configmod

        config = configmod.resolve(self.app / "imgbuild.yaml", env=self.env)
        return {"config": config, **{s.name: s for s in layers.chain(config)}}

    def repo(self, layer: str) -> str:
        return f"{REGISTRY}/{self.name}-{layer}"

    # ---- raw docker peer: the same Dockerfiles, driven by hand -----------------------------

    def raw_ref(self, layer: str, tag: str = "bench") -> str:
        return f"{REGISTRY}/bench-raw-{self.label}-{layer}:{tag}"

    def stage_raw(self) -> None:
        """Copy each Dockerfile next to the same ignore rules imgbuild uses (a fair context)."""
        from buildkit.source import dockerignore

        specs = self.specs()
        for layer in ("ruby", "base", "app"):
            directory = self.workdir / "raw" / layer
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(specs[layer].dockerfile, directory / "Dockerfile")
            spec = specs[layer]
            # Raw docker has no bulk split: the whole context in one COPY, as written.
            rendered = dockerignore.render(spec.bulk.ignore if spec.bulk else spec.ignore)
            (directory / "Dockerfile.dockerignore").write_text(rendered, encoding="utf-8")
        assets = specs["app"].assets
        if assets is not None:  # imgbuild's generated assets Dockerfile, as imgbuild stages it
            directory = self.workdir / "raw" / "assets"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "Dockerfile").write_text(assets.dockerfile, encoding="utf-8")
            rendered = dockerignore.render(assets.ignore)
            (directory / "Dockerfile.dockerignore").write_text(rendered, encoding="utf-8")

    def raw_build_argv(
        self,
        layer: str,
        tag: str,
        *,
        overrides: dict[str, str] | None = None,
        cold: bool = False,
        dockerfile: Path | None = None,
    ) -> list[str]:
        specs = self.specs()
        spec = specs[layer]
        context = spec.context or ruby_context(specs["config"], spec)
        argv = [DOCKER, "buildx", "build", "--load", "--progress=plain"]
        argv += ["-f", str(dockerfile or self.workdir / "raw" / layer / "Dockerfile")]
        argv += ["--cache-to", "type=inline"]
        args = dict(spec.build_args)
        if spec.bulk is not None:  # raw docker builds the app FROM the base image itself
            args["BASE_IMAGE"] = specs["base"].image
        for key, value in {**args, **(overrides or {})}.items():
            argv += ["--build-arg", f"{key}={value}"]
        if cold:
            argv.append("--no-cache")
        return [*argv, "-t", tag, str(context)]

    def raw_app(self) -> float:
        """The raw peer of P1/P2: build the app layer on imgbuild's base, push it. An app with
        precompiled assets (app.assets) first builds imgbuild's generated assets Dockerfile on
        that base, with the whole context, as raw docker would, and the app FROM it."""
        ref = self.raw_ref("app")
        seconds, overrides = 0.0, None
        if self.specs()["app"].assets is not None:
            assets_ref = self.raw_ref("assets")
            seconds, self.last_raw_assets_output = run(self.raw_assets_argv(assets_ref),
                                                       env=self.peer_env)  # fmt: skip
            overrides = {"BASE_IMAGE": assets_ref}
        build, _ = run(self.raw_build_argv("app", ref, overrides=overrides), env=self.peer_env)
        push, _ = run([DOCKER, "push", ref], env=self.peer_env)
        return seconds + build + push

    def raw_assets_argv(self, tag: str) -> list[str]:
        """`docker buildx build` of the staged assets Dockerfile on imgbuild's base image."""
        specs = self.specs()
        argv = [DOCKER, "buildx", "build", "--load", "--progress=plain"]
        argv += ["-f", str(self.workdir / "raw" / "assets" / "Dockerfile")]
        argv += ["--cache-to", "type=inline", "--build-arg", f"BASE_IMAGE={specs['base'].image}"]
        return [*argv, "-t", tag, str(specs["app"].context)]

    def raw_cold_base(self, ruby_image: str | None = None) -> tuple[float, str]:
        """A cold base build: no layer cache and an empty gem cache-mount directory."""
        key = f"bench-cold-{uuid.uuid4().hex[:8]}"
        overrides = {"BUNDLE_CACHE_KEY": key}
        if ruby_image:
            overrides["RUBY_IMAGE"] = ruby_image
        ref = self.raw_ref("base", "cold")
        # Its own cache-mount id: a --no-cache build that mounts the shared `imgbuild-bundle`
        # id gets a brand-new, empty mount that later builds then find - it would wipe every
        # app's compiled gems on the daemon (observed: the next imgbuild rebuild recompiled all).
        directory = self.workdir / "raw" / key
        directory.mkdir(parents=True, exist_ok=True)
        shared = self.workdir / "raw" / "base"
        text = (shared / "Dockerfile").read_text(encoding="utf-8")
        if SHARED_GEM_MOUNT not in text:
            raise BenchError(f"{shared}/Dockerfile has no `{SHARED_GEM_MOUNT}` mount to rename")
        (directory / "Dockerfile").write_text(text.replace(SHARED_GEM_MOUNT, f"id={key},"))
        shutil.copyfile(shared / "Dockerfile.dockerignore", directory / "Dockerfile.dockerignore")
        argv = self.raw_build_argv(
            "base", ref, overrides=overrides, cold=True, dockerfile=directory / "Dockerfile"
        )
        seconds, _ = run(argv, env=self.peer_env)
        return seconds, key

    def raw_cold_chain(self) -> float:
        """ruby → base → app from nothing (--no-cache, fresh gem cache dir): the P3 peer."""
        ruby_ref, base_ref = self.raw_ref("ruby", "cold"), self.raw_ref("base", "cold")
        if not _cold_ruby_seconds:
            seconds, _ = run(self.raw_build_argv("ruby", ruby_ref, cold=True), env=self.peer_env)
            _cold_ruby_seconds.append(seconds)
        ruby = _cold_ruby_seconds[0]
        # On imgbuild's ruby image: the same content as ruby_ref, and --no-cache re-runs every step.
        base, key = self.raw_cold_base()
        app_argv = self.raw_build_argv(
            "app", self.raw_ref("app", "cold"), overrides={"BASE_IMAGE": base_ref}, cold=True
        )
        app, _ = run(app_argv, env=self.peer_env)
        self.drop_gem_cache([key])
        return ruby + base + app

    def drop_gem_cache(self, keys: list[str]) -> None:
        """Empty our cold builds' own gem cache mounts (never the shared one, never --no-cache)."""
        ruby_image = self.specs()["base"].build_args["RUBY_IMAGE"]
        directory = self.workdir / "cleanup"
        directory.mkdir(exist_ok=True)
        mounts = [
            f"RUN --mount=type=cache,id={k},sharing=locked,target=/c find /c -mindepth 1 -delete"
            for k in keys
            if k.startswith("bench-cold-")
        ]
        (directory / "Dockerfile").write_text(
            "ARG RUBY_IMAGE\nFROM ${RUBY_IMAGE}\n" + "\n".join(mounts) + "\n", encoding="utf-8"
        )
        tag = f"bench-cleanup-{self.label}:tmp"
        argv = [DOCKER, "buildx", "build", "--load", "--progress=plain"]
        argv += ["--build-arg", f"RUBY_IMAGE={ruby_image}", "-t", tag, str(directory)]
        run(argv, env=self.env)
        run([DOCKER, "rmi", tag], env=self.env, check=False)

    # ---- naive peer: one stage, COPY . . before bundle install -----------------------------

    def naive_ref(self) -> str:
        return f"{REGISTRY}/bench-naive-{self.label}:bench"

    def naive(self) -> float:
        ref = self.naive_ref()
        argv = [DOCKER, "buildx", "build", "--load", "--progress=plain"]
        argv += ["-f", str(NAIVE_DOCKERFILE), "-t", ref, str(self.app)]
        build, _ = run(argv, env=self.peer_env)
        push, _ = run([DOCKER, "push", ref], env=self.peer_env)
        return build + push

    # ---- edits -----------------------------------------------------------------------------

    def edit_source(self) -> None:
        """Change one source file (new content every time, so every build is a real change)."""
        path = self.app / self.edit_target
        original = self.workdir / "edit-original"
        if not original.exists():
            shutil.copyfile(path, original)
        text = original.read_text(encoding="utf-8")
        path.write_text(f"{text}# bench edit {uuid.uuid4().hex}\n", encoding="utf-8")

    def restore_source(self) -> None:
        original = self.workdir / "edit-original"
        if original.exists():
            shutil.copyfile(original, self.app / self.edit_target)

    def edit_stylesheet(self) -> None:
        """Add a rule to the app's stylesheet (a new one every time): an asset input."""
        path = self.app / STYLESHEET
        original = self.workdir / "stylesheet-original"
        if not original.exists():
            shutil.copyfile(path, original)
        text = original.read_text(encoding="utf-8")
        rule = f".bench-{uuid.uuid4().hex[:12]} {{ color: #{uuid.uuid4().hex[:6]}; }}\n"
        path.write_text(text + rule, encoding="utf-8")

    def restore_stylesheet(self) -> None:
        original = self.workdir / "stylesheet-original"
        if original.exists():
            shutil.copyfile(original, self.app / STYLESHEET)

    def add_gem(self, gem: str) -> None:
        """Add one vendored gem to the Gemfile and Gemfile.lock (as `bundle add` would)."""
        for name in ("Gemfile", "Gemfile.lock"):
            keep = self.workdir / f"{name}.original"
            if not keep.exists():
                shutil.copyfile(self.app / name, keep)
        gemfile = (self.workdir / "Gemfile.original").read_text(encoding="utf-8")
        # The comment makes every addition a new base key: re-adding a gem an earlier run added
        # would otherwise find that run's image (or BuildKit's cached step) and build nothing.
        edit = f'{gemfile}\n# bench {uuid.uuid4().hex}\ngem "{gem}"\n'
        (self.app / "Gemfile").write_text(edit, encoding="utf-8")
        lock = (self.workdir / "Gemfile.lock.original").read_text(encoding="utf-8")
        (self.app / "Gemfile.lock").write_text(_lock_with(lock, gem), encoding="utf-8")

    def restore_gems(self) -> None:
        for name in ("Gemfile", "Gemfile.lock"):
            keep = self.workdir / f"{name}.original"
            if keep.exists():
                shutil.copyfile(keep, self.app / name)


def _lock_with(lock: str, gem: str) -> str:
    """Insert `gem (1.0.0)` into GEM specs and DEPENDENCIES, keeping Bundler's sort order."""
    sections = re.split(r"\n(?=[A-Z])", lock)
    out = []
    for section in sections:
        lines = section.split("\n")
        if lines[0] == "GEM":
            specs_at = lines.index("  specs:") + 1
            body = _insert_sorted(lines[specs_at:], f"    {gem} (1.0.0)", top_indent=4)
            lines = lines[:specs_at] + body
        elif lines[0] == "DEPENDENCIES":
            lines = [lines[0], *_insert_sorted(lines[1:], f"  {gem}", top_indent=2)]
        out.append("\n".join(lines))
    return "\n".join(out)


def _insert_sorted(lines: list[str], entry: str, top_indent: int) -> list[str]:
    """Insert a top-level entry among `lines` (which may carry deeper-indented sub-lines)."""
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip(" "))
        if line.strip() and indent == top_indent and line.strip() > entry.strip():
            return [*lines[:i], entry, *lines[i:]]
    # after the last non-blank line
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    return [*lines[: last + 1], entry, *lines[last + 1 :]]


def ruby_context(config: Any, spec: Any) -> Path:
    from buildkit.run import staging as contexts

    context: Path = contexts.stage_ruby_context(config, spec)
    return context


# --------------------------------------------------------------------------------------------
# Preparing the apps


def example_app() -> BenchApp:
    """A copy of examples/hello named bench-hello, plus small extra gems for P4."""
    suffix = tools.CURRENT_ENGINE.suffix
    name = f"bench-hello{suffix}"
    bench = BenchApp(label="example", name=name, workdir=BENCH_HOME / f"example{suffix}")
    if not (bench.app / "imgbuild.yaml").is_file():
        shutil.copytree(REPO_ROOT / "examples" / "hello", bench.app, dirs_exist_ok=True)
        _rename(bench.app, "hello", name)
    if not list((bench.app / "vendor" / "cache").glob("benchextra_*.gem")):
        _use_ruby_of(bench)
        gen_app.generate_extras(bench.app)
    bench.extras = _extras(bench.app)
    return bench


def _use_ruby_of(bench: BenchApp) -> None:
    """Gems are built with a Ruby image: this bench app's own ruby layer (built or pulled here if
    need be), so a fresh machine needs nothing but the bench itself. BENCH_RUBY_IMAGE overrides."""
    if os.environ.get("BENCH_RUBY_IMAGE"):
        return
    _, doc = bench.imgbuild("ruby")
    ruby = next((layer for layer in doc.get("layers") or () if layer["name"] == "ruby"), None)
    if ruby is None:
        raise BenchError(f"imgbuild ruby on {bench.app} gave no ruby layer in its --json")
    gen_app.RUBY_IMAGE = str(ruby["image"])


def large_app() -> BenchApp:
    workdir = BENCH_HOME / "large"
    if not (workdir / ".complete").is_file():
        shutil.rmtree(workdir, ignore_errors=True)
        _use_ruby_of(example_app())
        gen_app.generate_large(workdir)
    suffix = tools.CURRENT_ENGINE.suffix
    if suffix:  # the same generated app under its own name, work dir and repositories
        copy = BENCH_HOME / f"large{suffix}"
        if not (copy / ".complete").is_file():
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(workdir / "app", copy / "app", symlinks=True)
            _rename(copy / "app", "bench-large", f"bench-large{suffix}")
            (copy / ".complete").touch()
        workdir = copy
    bench = BenchApp(
        label="large",
        name=f"bench-large{suffix}",
        workdir=workdir,
        edit_target="app/models/ns0/part0/models_00000.rb",
    )
    bench.extras = _extras(bench.app)
    return bench


def rails_app() -> BenchApp:
    """examples/rails (a Rails 7.2 app, with its gems in vendor/cache: `make services` puts
    them there), named bench-rails. Copied again on every run, so the bench builds the example
    as it is now (its config, its Dockerfiles); copy2 keeps the files' times, so an unchanged
    file looks unchanged to BuildKit's context transfer."""
    suffix = tools.CURRENT_ENGINE.suffix
    name = f"bench-rails{suffix}"
    bench = BenchApp(
        label="rails",
        name=name,
        workdir=BENCH_HOME / f"rails{suffix}",
        edit_target="app/controllers/pages_controller.rb",
    )
    if not list((RAILS_EXAMPLE / "vendor" / "cache").glob("railties-*.gem")):
        raise BenchError(f"{RAILS_EXAMPLE}/vendor/cache has no gems; run `make services`")
    # The edits' originals come from the example, not from an edited copy a killed run left.
    for original in ("edit-original", "stylesheet-original"):
        (bench.workdir / original).unlink(missing_ok=True)
    shutil.rmtree(bench.app, ignore_errors=True)
    ignore = shutil.ignore_patterns("*.log", "imgbuild-baseline.json")
    shutil.copytree(RAILS_EXAMPLE, bench.app, symlinks=True, ignore=ignore)
    _rename(bench.app, "rails-demo", name)
    return bench


def _rename(app: Path, old: str, new: str) -> None:
    config = app / "imgbuild.yaml"
    text = config.read_text(encoding="utf-8")
    if f"name: {old}\n" not in text:
        raise BenchError(f"{config} has no `name: {old}` line to rename")
    text = text.replace(f"name: {old}\n", f"name: {new}\n", 1)
    config.write_text(text, encoding="utf-8")


def _extras(app: Path) -> list[str]:
    return sorted(p.name.rsplit("-", 1)[0] for p in app.glob("vendor/cache/benchextra_*"))


def ensure_naive_rubysrc(bench: BenchApp) -> None:
    """The image naive/Dockerfile mounts Ruby's sources from: imgbuild's own ruby context."""
    argv = [DOCKER, "image", "inspect", "-f", "ok", NAIVE_RUBYSRC]
    _, out = run(argv, env=bench.env, check=False)
    if out.strip() == "ok":
        return
    specs = bench.specs()
    context = ruby_context(specs["config"], specs["ruby"])
    directory = bench.workdir.parent / "naive-rubysrc"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(context, directory, symlinks=True)
    definition = (directory / "defs" / RUBY_VERSION).read_text(encoding="utf-8")
    definition = definition.replace("file:///opt/ruby-src/", "file:///opt/rubysrc/src/")
    (directory / "defs" / RUBY_VERSION).write_text(definition, encoding="utf-8")
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY . /\n", encoding="utf-8")
    run([DOCKER, "buildx", "build", "--load", "--progress=plain", "-t", NAIVE_RUBYSRC,
         str(directory)], env=bench.env)  # fmt: skip


def setup(bench: BenchApp, *, naive: bool = True) -> None:
    """Bring every side to a warm, pushed state once, outside the measurements."""
    bench.restore_source()
    bench.restore_gems()
    _, doc = bench.imgbuild("app", "--push")
    if not doc.get("layers"):
        raise BenchError(f"imgbuild app --push on {bench.app} gave no --json result")
    bench.stage_raw()
    bench.raw_app()
    if naive:
        ensure_naive_rubysrc(bench)
        bench.naive()
