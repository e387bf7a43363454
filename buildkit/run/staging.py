"""Build contexts and staged Dockerfiles.

The ruby layer's context is assembled here: ruby-build, the release tarball (when the config names
one) and a custom ruby-build definition for it. Other layers build straight from the app directory;
their filtering is a Dockerfile-specific ignore file (`Dockerfile.dockerignore`, read by BuildKit
next to the Dockerfile), so imgbuild's defaults apply without touching the app's own files.
Staging dirs are persistent per image, so BuildKit's context transfer stays incremental.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from buildkit import cachedir, log
from buildkit.chain.model import LayerSpec
from buildkit.config.loading import Config
from buildkit.errors import InputError
from buildkit.fsutil import atomic_write_text
from buildkit.source import dockerignore

SHARED_GEM_MOUNT = "imgbuild-bundle"  # the cache mount id in images/base/Dockerfile

RUBY_BUILD_URL = "https://github.com/rbenv/ruby-build/archive/refs/tags/{tag}.tar.gz"


def _staged(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _context_dir(config: Config, spec: LayerSpec) -> Path:
    return _staged(cachedir.context_dir(config.cache_dir, spec.repository))


@contextlib.contextmanager
def staging_lock(config: Config, spec: LayerSpec) -> Iterator[None]:
    import fcntl

    _context_dir(config, spec)  # creates contexts/, where the lock file sits beside it
    with cachedir.staging_lock(config.cache_dir, spec.repository).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stage(config: Config, spec: LayerSpec, sub: str, text: str, ignore: str) -> Path:
    """Write a Dockerfile and the ignore file BuildKit reads beside it (`<name>.dockerignore`)
    under the layer's staging dir (`sub` for the app's hidden images); return its path."""
    directory = _staged(cachedir.dockerfile_dir(config.cache_dir, spec.repository, sub))
    target = directory / "Dockerfile"
    atomic_write_text(target, text)
    atomic_write_text(directory / "Dockerfile.dockerignore", ignore)
    return target


def stage_dockerfile(config: Config, spec: LayerSpec) -> Path:
    """Copy the layer's Dockerfile next to its generated ignore file; return the copy's path."""
    text = _own_gem_mount(spec, spec.dockerfile.read_text(encoding="utf-8"))
    return _stage(config, spec, "", text, dockerignore.render(spec.ignore))


def stage_bulk_dockerfile(config: Config, spec: LayerSpec) -> Path:
    """The generated Dockerfile of the app's bulk image (applayer/bulk.py), next to the app's own
    ignore rules without the bulk exclusions; staged under the app layer's lock."""
    assert spec.bulk is not None
    return _stage(
        config, spec, "bulk", spec.bulk.dockerfile(), dockerignore.render(spec.bulk.ignore)
    )


def stage_assets_dockerfile(config: Config, spec: LayerSpec) -> Path:
    """The generated Dockerfile of the app's assets image (applayer/assets.py), next to the app's
    own ignore rules plus the assets' (no stale output, no local node_modules to install over);
    staged under the app layer's lock."""
    assert spec.assets is not None
    return _stage(
        config, spec, "assets", spec.assets.dockerfile, dockerignore.render(spec.assets.ignore)
    )


def _own_gem_mount(spec: LayerSpec, text: str) -> str:
    """Give the gem cache mount an id of its own per BUNDLE_CACHE_KEY (BuildKit v0.8 does not
    expand ARGs in --mount options). With one shared id, a `--no-cache` build replaces the
    mount with an empty one for every app on the daemon, and the next builds recompile all
    their gems; now it only empties its own."""
    key = spec.build_args.get("BUNDLE_CACHE_KEY")
    if not key:
        return text
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    return text.replace(f"id={SHARED_GEM_MOUNT},", f"id={SHARED_GEM_MOUNT}-{safe},")


def stage_ruby_context(config: Config, spec: LayerSpec) -> Path:
    """Assemble ruby-build/, src/ and defs/ for the ruby layer; return the context directory."""
    context = _context_dir(config, spec)
    for sub in ("src", "defs"):
        shutil.rmtree(context / sub, ignore_errors=True)
        (context / sub).mkdir()
    _place_ruby_build(config, context / "ruby-build")
    source = config.ruby.source
    if source is not None:
        name = f"ruby-{config.ruby.version}"
        sha = spec.inputs["ruby source"].removeprefix("sha256:")
        if source.path is not None:
            filename = source.path.name
            _link_or_copy(source.path, context / "src" / filename)
            url = f"file:///opt/ruby-src/{filename}"
        else:
            assert source.url is not None
            url = source.url
        definition = f'install_package "{name}" "{url}#{sha}" enable_shared standard\n'
        (context / "defs" / config.ruby.version).write_text(definition, encoding="utf-8")
    return context


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _place_ruby_build(config: Config, target: Path) -> None:
    """ruby-build as bin/ + share/: from a local checkout or tarball, or a downloaded release."""
    wanted = config.ruby.ruby_build
    # The stamp sits beside ruby-build/, not in it: the Dockerfile COPYs that dir, and an extra
    # file would change its cache key and recompile Ruby.
    stamp = target.parent / ".ruby-build-source"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return
    shutil.rmtree(target, ignore_errors=True)
    source = Path(wanted)
    if source.is_absolute() and source.is_dir():
        _copy_ruby_build_tree(source, target)
    else:
        archive = source if source.is_absolute() else _download_ruby_build(config, wanted)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            roots = [p for p in Path(tmp).iterdir() if p.is_dir()]
            _copy_ruby_build_tree(roots[0] if len(roots) == 1 else Path(tmp), target)
    stamp.write_text(wanted, encoding="utf-8")


def _copy_ruby_build_tree(source: Path, target: Path) -> None:
    if not (source / "bin" / "ruby-build").is_file():
        raise InputError(
            f"ruby.ruby_build {source} has no bin/ruby-build; point it at a ruby-build checkout"
        )
    target.mkdir(parents=True)
    shutil.copytree(source / "bin", target / "bin")
    shutil.copytree(source / "share", target / "share")


def _download_ruby_build(config: Config, wanted: str) -> Path:
    tag = wanted if wanted.startswith("v") else f"v{wanted}"
    url = wanted if wanted.startswith(("http://", "https://")) else RUBY_BUILD_URL.format(tag=tag)
    downloads = _staged(cachedir.downloads(config.cache_dir))
    archive = cachedir.download(config.cache_dir, url)
    if not archive.is_file():
        log.info(f"downloading ruby-build from {url}")
        partial = downloads / f".{archive.name}.{os.getpid()}.part"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
                shutil.copyfileobj(response, out)
            partial.replace(archive)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise InputError(
                f"{config.path}: cannot download ruby-build from {url} ({exc}); set "
                "ruby.ruby_build to a local ruby-build checkout"
            ) from None
    return archive


def stage_snapshot_dockerfile(config: Config, spec: LayerSpec) -> Path:
    """The app Dockerfile up to its context COPY (applayer/snapshot.py), next to the app layer's
    ignore rules: the snapshot copies the whole source as a one-step build would."""
    assert spec.delta is not None
    return _stage(config, spec, "snapshot", spec.delta.prefix, dockerignore.render(spec.ignore))


def stage_delta(config: Config, spec: LayerSpec, changed: Sequence[str]) -> tuple[Path, Path]:
    """(Dockerfile, context) of an app build on its snapshot: the app Dockerfile as is, and a
    context holding only the `changed` files (hard links where possible), directories with the
    source's modes, so its `COPY . <dest>` writes exactly what a whole-tree COPY would."""
    assert spec.context is not None
    # The ignore file is there so BuildKit does not fall back to a .dockerignore in the delta.
    text = spec.dockerfile.read_text(encoding="utf-8")
    dockerfile = _stage(config, spec, "delta", text, "# the delta holds only kept files\n")
    context = _delta_context(config, spec)
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir()
    _copy_mode(spec.context, context)
    for rel in changed:
        _place_changed(spec.context, context, rel)
    return dockerfile, context


def clear_delta(config: Config, spec: LayerSpec) -> None:
    shutil.rmtree(_delta_context(config, spec), ignore_errors=True)


def _delta_context(config: Config, spec: LayerSpec) -> Path:
    _context_dir(config, spec)  # its parent: stage_delta creates the delta dir itself
    return cachedir.delta_context(config.cache_dir, spec.repository)


def _place_changed(root: Path, context: Path, rel: str) -> None:
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        sub = "/".join(parts[:depth])
        if not (context / sub).is_dir():
            (context / sub).mkdir()
            _copy_mode(root / sub, context / sub)
    source, target = root / rel, context / rel
    try:
        if source.is_symlink():
            target.symlink_to(source.readlink())
        else:
            _link_or_copy(source, target)
    except OSError as exc:
        raise InputError(
            f"{source} changed while imgbuild staged it ({exc.strerror}); run the build again"
        ) from None


def _copy_mode(source: Path, target: Path) -> None:
    target.chmod(source.stat().st_mode & 0o7777)
