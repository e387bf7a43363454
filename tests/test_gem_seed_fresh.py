"""Issue 17: a base made stale by Gemfile.lock on a fresh machine (empty daemon, empty imgbuild
cache: every CodeBuild build) compiles only the gems that changed. The previous base image's
bundle, pulled as a build stage, seeds the empty gem cache (run/gemseed.py, images/base)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE, DevEnv, Project, layers_by_name
from tests.engines import (
    FRESH_BRIDGE,
    Engine,
    FreshDaemon,
    start_fresh_daemon,
    start_fresh_engine26,
)
from tests.fresh_proxy import proxied_docker_config

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.engines]

INSTALLING = re.compile(r"\bInstalling (\S+) \d")
SEEDED = re.compile(r"bundle seed: (\d+) gem\(s\) from the previous base image")


@pytest.fixture
def docker_config(tmp_path: Path, fresh_daemon: FreshDaemon) -> Iterator[Path]:
    """A DOCKER_CONFIG naming an HTTP proxy the fresh daemons' RUN steps reach."""
    with proxied_docker_config(tmp_path / "docker-config", FRESH_BRIDGE) as config:
        yield config


@contextmanager
def another_fresh_daemon(engine: Engine, dev: DevEnv, root: Path) -> Iterator[FreshDaemon]:
    """A second empty daemon of the test's kind: the next CI machine."""
    if engine.name == "system":
        with start_fresh_daemon(root, dockerd=["dockerd"]) as daemon:
            yield daemon
    else:
        with start_fresh_engine26(root, dev.home / "engine26" / "root") as daemon:
            yield daemon


def _replaced(data: bytes, replacements: dict[bytes, bytes]) -> bytes:
    for before, after in replacements.items():
        data = data.replace(before, after)
    return data


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(member)
    assert extracted is not None
    return extracted.read()


def _checksums(files: dict[str, bytes]) -> bytes:
    lines = ["---"]
    for algo in ("sha256", "sha512"):
        lines.append(f"{algo.upper()}:")
        lines += [
            f"  {name}: {hashlib.new(algo, data).hexdigest()}" for name, data in files.items()
        ]
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def gem_variant(source: str, target: Path, replacements: dict[bytes, bytes]) -> None:
    """The example's vendored gem `source` (a file name) written to target with `replacements`
    made in its spec, file names and files, and its checksums made again: gems of our own,
    made without Ruby."""
    with tarfile.open(EXAMPLE / "vendor" / "cache" / source) as gem:
        parts = {member.name: _read(gem, member) for member in gem.getmembers()}
    data = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(parts["data.tar.gz"]), mode="r:gz") as inner,
        tarfile.open(fileobj=data, mode="w:gz") as out,
    ):
        for member in inner.getmembers():
            content = _replaced(_read(inner, member), replacements)
            member.name = _replaced(member.name.encode(), replacements).decode()
            member.size = len(content)
            out.addfile(member, io.BytesIO(content))
    spec = _replaced(gzip.decompress(parts["metadata.gz"]), replacements)
    files = {"metadata.gz": gzip.compress(spec, mtime=0), "data.tar.gz": data.getvalue()}
    files["checksums.yaml.gz"] = _checksums(files)
    with tarfile.open(target, mode="w") as gem:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o444, 1704067200
            gem.addfile(info, io.BytesIO(content))


def change_gems(project: Project) -> None:
    """A new native gem, tinyseed (tinynative renamed), in vendor/cache, the Gemfile and the
    lockfile; and tinypure rebuilt under the same version with another result."""
    cache = project.root / "vendor" / "cache"
    renamed = {b"tinynative": b"tinyseed", b"TinyNative": b"TinySeed"}
    gem_variant("tinynative-0.1.0.gem", cache / "tinyseed-0.1.0.gem", renamed)
    louder = {b'upcase}!"': b'upcase}!!"'}
    gem_variant("tinypure-1.0.0.gem", cache / "tinypure-1.0.0.gem", louder)
    gemfile = project.root / "Gemfile"
    gemfile.write_text(gemfile.read_text() + 'gem "tinyseed", "~> 0.1"\n')
    lock = project.root / "Gemfile.lock"
    text = lock.read_text()
    text = text.replace("    tinypure (1.0.0)\n", "    tinypure (1.0.0)\n    tinyseed (0.1.0)\n")
    text = text.replace("  tinynative (~> 0.1)\n", "  tinynative (~> 0.1)\n  tinyseed (~> 0.1)\n")
    assert "tinyseed (0.1.0)" in text
    assert "tinyseed (~> 0.1)" in text
    lock.write_text(text)


def drop_gem(project: Project, name: str) -> None:
    """The gem out of the Gemfile and the lockfile (its .gem stays in vendor/cache)."""
    for file in ("Gemfile", "Gemfile.lock"):
        path = project.root / file
        kept = [line for line in path.read_text().splitlines(keepends=True) if name not in line]
        path.write_text("".join(kept))


def build_base(
    project: Project, host: str, cache: Path, docker_config: Path, *extra: str
) -> tuple[dict[str, dict[str, Any]], str]:
    """`imgbuild base` on the daemon at host with the imgbuild cache dir `cache`: (layers, log)."""
    env = {
        "DOCKER_HOST": host,
        "IMGBUILD_CACHE_DIR": str(cache),
        "DOCKER_CONFIG": str(docker_config),
    }
    result = project.run("base", "--json", *extra, extra_env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return layers_by_name(json.loads(result.stdout)), result.stderr


def installed(log: str) -> set[str]:
    return set(INSTALLING.findall(log))


def in_image(host: str, image: str) -> str:
    """What the image's gems compute (loaded from its bundle by RubyGems), and its vendor stamps."""
    script = (
        'require "tinynative"; require "tinyseed"; require "tinypure"; '
        'print TinyNative.add(1, 2) + TinySeed.add(3, 4), " ", TinyPure.shout("hi")'
    )
    shell = (
        f"GEM_PATH=$(echo /usr/local/bundle/ruby/*) ruby -e '{script}' && echo && "
        "ls /usr/local/bundle/.imgbuild-vendor-stamps"
    )
    result = subprocess.run(
        ["docker", "-H", host, "run", "--rm", "--entrypoint", "sh", image, "-c", shell],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_fresh_machine_compiles_only_the_changed_gems(
    project: Project,
    fresh_daemon: FreshDaemon,
    engine: Engine,
    dev: DevEnv,
    docker_config: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Repositories of this run's own (the ruby one aside: its image is reused), so a warm
    # registry's `latest` is never the seed under test.
    name = f"{project.name}-seed-{uuid.uuid4().hex[:8]}"
    project.edit_config(f"name: {project.name}\n", f"name: {name}\n")
    project.edit_config("app:\n", f"ecr:\n  repositories: {{ruby: {project.name}-ruby}}\napp:\n")
    push = ("--push", "--release-tags")  # `latest`: the seed the next machine finds
    first, log = build_base(project, fresh_daemon.host, project.cache_dir, docker_config, *push)
    assert first["base"]["pushed"]
    assert f"gems not seeded: {first['base']['image'].rsplit(':', 1)[0]}:latest is not" in log
    assert installed(log) == {"tinydep", "tinynative", "tinypure"}

    change_gems(project)
    root = tmp_path_factory.mktemp("seedd")
    with another_fresh_daemon(engine, dev, root) as machine:
        second, log = build_base(project, machine.host, root / "cache", docker_config)
        assert second["base"]["built"]
        assert "base: gems seeded from " in log
        assert SEEDED.findall(log) == ["3"], log[-4000:]
        assert installed(log) == {"tinyseed", "tinypure"}, log[-4000:]
        assert "tinypure-1.0.0.gem changed under the same version: reinstalling it" in log
        assert "Bundle complete! 4 Gemfile dependencies, 5 gems now installed" in log
        # The stamps of the gems it installed: not tinydev's (a skipped group's).
        assert in_image(machine.host, second["base"]["image"]).split() == [
            "10", "HI!!", "tinydep-0.2.0", "tinynative-0.1.0", "tinypure-1.0.0", "tinyseed-0.1.0",
        ]  # fmt: skip
        # The seed is a build arg, not an input: the next plan finds the image it tagged.
        again, _ = build_base(project, machine.host, root / "cache", docker_config)
        assert again["base"]["key"] == second["base"]["key"]
        assert again["base"]["built"] is False

        # This machine's gem cache has the key's gems now: the seed is passed (the registry's
        # `latest` still matches) but never copied over them.
        drop_gem(project, "tinyseed")
        warm, log = build_base(project, machine.host, root / "cache", docker_config)
        assert warm["base"]["built"]
        assert "base: gems seeded from " in log
        assert SEEDED.findall(log) == [], log[-4000:]
        assert installed(log) == set(), log[-4000:]
        assert "Bundle complete! 3 Gemfile dependencies, 4 gems now installed" in log

        # Other build packages, so another gem cache key: no seed, every gem compiled.
        project.edit_config("base:\n", "base:\n  build_packages: [make]\n")
        third, log = build_base(project, machine.host, root / "cache3", docker_config)
        assert third["base"]["built"]
        assert "base: gems not seeded: " in log
        assert " has bundle " in log
        assert SEEDED.findall(log) == []
        assert installed(log) == {"tinydep", "tinynative", "tinypure"}
