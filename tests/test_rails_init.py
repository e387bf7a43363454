"""`imgbuild init` on examples/rails (issue 15's acceptance): in a copy of the example without its
imgbuild.yaml, the file init writes builds the chain and boots the same app.

The test adds only what this offline dev machine needs and a real user would not: the dev
registry and the mirrored Debian image through IMGBUILD_REGISTRY / IMGBUILD_BASE_IMAGE (so the
written file is used as written), and, since no environment variable sets them, the Ruby tarball
and ruby-build checkout of the example's own imgbuild.yaml, inserted under `ruby:`. The copy's
directory is `rails-init`, so its repositories are rails-init-* (the name init derives from it):
`make demo`'s and test_rails_example's images are neither reused nor replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildkit.config import loading
from tests.conftest import DevEnv, Project, layers_by_name
from tests.rails_fixtures import RAILS_EXAMPLE, assert_serves_the_example, booted, copy_example

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NAME = "rails-init"


def offline_ruby_lines(version_line: str) -> str:
    """The example's ruby.source and ruby.ruby_build, as written there (`${IMGBUILD_DEV_HOME…}`
    unexpanded), as lines to follow `version_line` in the written `ruby:` section."""
    own: dict[str, Any] = yaml.safe_load((RAILS_EXAMPLE / "imgbuild.yaml").read_text())
    offline = {key: own["ruby"][key] for key in ("source", "ruby_build")}
    dumped = yaml.safe_dump(offline, default_flow_style=False, sort_keys=False)
    return version_line + "".join(f"  {line}\n" for line in dumped.splitlines())


def test_init_writes_a_config_that_builds_and_boots_the_example(
    tmp_path: Path, dev: DevEnv
) -> None:
    root = copy_example(tmp_path / NAME)
    (root / "imgbuild.yaml").unlink()
    dev_env = {"IMGBUILD_REGISTRY": dev.registry, "IMGBUILD_BASE_IMAGE": dev.base_image}
    # init as a user runs it on this machine: IMGBUILD_BASE_IMAGE tells it the Debian release
    # the package names are for (docs/init.md); no registry, so none is written.
    env = {k: v for k, v in os.environ.items() if k != "IMGBUILD_REGISTRY"}
    init = subprocess.run(
        [sys.executable, "-m", "buildkit", "init", str(root)],
        capture_output=True,
        text=True,
        env={**env, "IMGBUILD_BASE_IMAGE": dev.base_image},
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    config_path = root / "imgbuild.yaml"
    written = config_path.read_text()
    config = loading.resolve(config_path, env={})
    assert (config.name, config.registry) == (NAME, None)
    assert config.app.dockerfile is None  # imgbuild's own app Dockerfile

    version_line = f"  version: {json.dumps(config.ruby.version)}\n"
    assert written.count(version_line) == 1, written
    config_path.write_text(written.replace(version_line, offline_ruby_lines(version_line)))

    project = Project(root=root, cache_dir=tmp_path / "cache", dev=dev, name=NAME)
    result = project.run("app", "--push", "--json", extra_env=dev_env)
    assert result.returncode == 0, result.stderr[-4000:]
    layers = layers_by_name(json.loads(result.stdout))
    assert list(layers) == ["ruby", "base", "app"]
    image = layers["app"]["image"]
    assert image.startswith(f"{dev.registry}/{NAME}-app:")

    # The page's stylesheet comes from imgbuild's assets layer: init wrote no precompile step.
    with booted(image) as port:
        assert_serves_the_example(port)
