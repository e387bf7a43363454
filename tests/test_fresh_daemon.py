"""Acceptance 6: a wiped daemon (here: a second, empty dockerd) reuses the registry's chain."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import FreshDaemon, Project, layers_by_name

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.engines]


def test_source_change_on_fresh_daemon_builds_only_app(
    project: Project, fresh_daemon: FreshDaemon
) -> None:
    project.run_json("app", "--push")  # make sure the registry has the chain
    (project.root / "lib" / "fresh.rb").write_text(f"FRESH = {time.time_ns()}\n")
    env = {"DOCKER_HOST": fresh_daemon.host}
    result = project.run("app", "--push", "--json", extra_env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    layers = layers_by_name(json.loads(result.stdout))
    assert [layers[n]["built"] for n in ("ruby", "base", "app")] == [False, False, True]
    assert layers["app"]["pushed"] is True


def test_ruby_rebuild_on_fresh_daemon_is_all_cache_hits(
    project: Project, fresh_daemon: FreshDaemon
) -> None:
    """A new ruby key whose steps are unchanged (an unused build arg) must not recompile Ruby:
    every step comes from the registry's inline cache."""
    # A ruby repository and nonces of this run's own: the cache source under test is the image
    # this test pushed, never an earlier run's `latest` (built by another version or engine).
    first, second = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    project.edit_config(
        "app:\n", f"ecr:\n  repositories: {{ruby: {project.name}-ruby-{first}}}\napp:\n"
    )
    project.edit_config(
        'version: "3.3.8"', f'version: "3.3.8"\n  build_args: {{UNUSED_NONCE: "{first}"}}'
    )
    project.run_json("ruby", "--push")  # main daemon: its build cache makes this cheap after once
    project.edit_config(f'UNUSED_NONCE: "{first}"', f'UNUSED_NONCE: "{second}"')
    env = {"DOCKER_HOST": fresh_daemon.host}
    result = project.run("ruby", "--json", extra_env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    ruby = layers_by_name(json.loads(result.stdout))["ruby"]
    assert ruby["built"] is True
    executed = [s["name"] for s in ruby["steps"] if not s["cached"] and "] RUN" in s["name"]]
    # The last step only checks that Ruby loads (`ruby -ropenssl … puts`): it makes no layer,
    # and engine 26's inline cache (BuildKit 0.13, containerd store) may hold no record of it,
    # so a fresh daemon runs it again (a second). Every step that makes a layer — apt, the
    # compile, the runtime packages — must come from the cache.
    costly = [name for name in executed if "ruby -ropenssl" not in name]
    assert costly == [], f"steps ran instead of coming from the cache: {costly}"
    assert ruby["seconds"] < 120
