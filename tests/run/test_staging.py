"""Staging of Dockerfiles and contexts for BuildKit (run/staging.py), on a copy of the example."""

from __future__ import annotations

from buildkit.chain import layers
from buildkit.config import loading as configmod
from buildkit.run import staging as contexts
from tests.conftest import Project


def staged_base(project: Project, extra_config: str = "") -> tuple[str, str]:
    if extra_config:
        project.edit_config("base:\n", f"base:\n{extra_config}")
    config = configmod.resolve(project.config, env=project.env())
    base = layers.chain(config)[1]
    staged = contexts.stage_dockerfile(config, base)
    return staged.read_text(encoding="utf-8"), base.build_args["BUNDLE_CACHE_KEY"]


def test_gem_cache_mount_gets_an_id_per_bundle_cache_key(project: Project) -> None:
    text, key = staged_base(project)
    assert "id=imgbuild-bundle," not in text  # the shared id a --no-cache build would wipe
    assert f"id=imgbuild-bundle-{key}," in text
    other, other_key = staged_base(project, "  build_args: {BUNDLE_CACHE_KEY: 'other app/x'}\n")
    assert other_key == "other app/x"
    assert "id=imgbuild-bundle-other_app_x," in other  # argv- and id-safe characters only
