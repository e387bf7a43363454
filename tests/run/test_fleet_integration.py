"""Issue 18's acceptance on the real daemon, BuildKit and registry: a monorepo of three apps, two
on one Ruby and one on another configure option, built and pushed by one `imgbuild app --push`.

Ruby is compiled twice in all, not three times. The default Ruby's steps are in the daemon's
BuildKit cache from the suite's other tests; the worker's configure option compiles Ruby once
(minutes on a cold machine), then the daemon's cache has it too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests import monorepo
from tests.cli_process import run_imgbuild
from tests.conftest import DevEnv

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def imgbuild(
    config: Path, cache: Path, prefix: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMGBUILD_CACHE_DIR": str(cache), "CI": "true", "MONO_PREFIX": prefix}
    env.pop("IMGBUILD_REGISTRY", None)
    return run_imgbuild(config, *args, env=env, timeout=1800)


def run_json(config: Path, cache: Path, prefix: str, *args: str) -> Any:
    return run_logged(config, cache, prefix, *args)[0]


def run_logged(config: Path, cache: Path, prefix: str, *args: str) -> tuple[Any, str]:
    """The --json document and the log (stderr)."""
    result = imgbuild(config, cache, prefix, *args, "--json")
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout), result.stderr


def content_tags(registry: str, repository: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list", timeout=10) as r:
        tags = json.loads(r.read())["tags"] or []
    return sorted(t for t in tags if re.fullmatch(r"[0-9a-f]{12}", t))


def test_three_apps_compile_ruby_twice_and_a_rerun_builds_nothing(
    tmp_path: Path, dev: DevEnv
) -> None:
    prefix = f"i18mono-{uuid.uuid4().hex[:8]}"
    config = monorepo.lay_out(tmp_path / "mono")
    cache = tmp_path / "cache"

    first, log = run_logged(config, cache, prefix, "app", "--push", "--jobs", "2")
    assert [a["app"] for a in first["apps"]] == list(monorepo.APPS)
    built = first["built"]
    rubies = [i for i in built if i.startswith(f"{dev.registry}/{prefix}-ruby:")]
    assert len(rubies) == 2, built
    # Each BuildKit build of a Ruby image, as the run logged it: two, whatever the JSON dedupes.
    ruby_builds = re.findall(r"\] imgbuild: ruby: building (\S+)", log)
    assert sorted(ruby_builds) == sorted(rubies), log[-4000:]
    assert len(re.findall(r"imgbuild: base: building ", log)) == 3  # apps: assembled (native)
    for app in monorepo.APPS:
        assert any(i.startswith(f"{dev.registry}/{prefix}-{app}-base:") for i in built)
        assert any(i.startswith(f"{dev.registry}/{prefix}-{app}-app:") for i in built)
    assert len(built) == 2 + 3 + 3
    # Each app's own report names its chain; web and api list the same Ruby image, shared.
    chains = {a["app"]: [layer["image"] for layer in a["layers"]] for a in first["apps"]}
    assert chains["web"][0] == chains["api"][0] != chains["worker"][0]
    assert chains["web"][0] in first["apps"][1]["shared"]
    # The engine's side: the shared repository holds exactly the two Ruby images.
    assert content_tags(dev.registry, f"{prefix}-ruby") == sorted(
        r.rsplit(":", 1)[1] for r in rubies
    )

    report = run_json(config, cache, prefix, "report")
    assert [a["app"] for a in report["apps"]] == list(monorepo.APPS)
    for app in report["apps"]:
        assert {i["layer"] for i in app["report"]["images"]} == {"ruby", "base", "app"}

    again = run_json(config, cache, prefix, "app", "--push", "--jobs", "2")
    assert again["built"] == []
    assert all(not layer["built"] for a in again["apps"] for layer in a["layers"])


def test_plan_over_the_apps_and_one_app_selected(tmp_path: Path, dev: DevEnv) -> None:
    prefix = f"i18mono-{uuid.uuid4().hex[:8]}"
    config = monorepo.lay_out(tmp_path / "mono")
    cache = tmp_path / "cache"
    plan = run_json(config, cache, prefix, "plan")
    apps = {a["app"]: a["layers"] for a in plan["apps"]}
    assert apps["api"][0]["shared_with"] == "web"
    assert apps["worker"][0]["shared_with"] is None
    single = run_json(config, cache, prefix, "--app", "api", "plan")
    assert [layer["name"] for layer in single["layers"]] == ["ruby", "base", "app"]
    wrong = imgbuild(config, cache, prefix, "--app", "wbe", "plan")
    assert wrong.returncode == 3
    assert "no app 'wbe' in apps; did you mean 'web'?" in wrong.stderr
