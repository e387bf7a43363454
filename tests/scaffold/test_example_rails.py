"""`imgbuild init` on a copy of examples/rails without its imgbuild.yaml: what it writes covers
what the example's own, hand-written config says the app needs (no Docker here; building and
booting the written config is tests/test_rails_init.py's job)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from rails_apps import REPO

from buildkit.config import loading
from buildkit.scaffold import write as writemod

EXAMPLE = REPO / "examples" / "rails"


@pytest.fixture
def example_copy(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    if not (EXAMPLE / "imgbuild.yaml").is_file():
        pytest.skip("examples/rails is not in this checkout")
    root = tmp_path / "rails"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("vendor", "tmp", "log"))
    own = yaml.safe_load((root / "imgbuild.yaml").read_text(encoding="utf-8"))
    (root / "imgbuild.yaml").unlink()
    return root, own


def test_init_covers_the_examples_own_config(example_copy: tuple[Path, dict[str, Any]]) -> None:
    root, own = example_copy
    result = writemod.init_app(root, name=own["name"], env={})
    config = loading.resolve(result.path, env={})
    assert config.name == own["name"]
    assert config.ruby.version == own["ruby"]["version"]
    assert set(own["base"].get("packages", [])) <= set(config.base.packages)
    assert set(own["base"].get("build_packages", [])) <= set(config.base.build_packages)
    assert dict(config.base.build_args) == {
        k: str(v) for k, v in (own["base"].get("build_args") or {}).items()
    }
    assert config.app.command == own["app"]["command"]
    assert config.app.port == own["app"].get("port", 3000)
