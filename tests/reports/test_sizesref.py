"""reports/sizesref.py: a run that pushed stores the layer sizes it had to read blobs for beside
the images, and a fresh machine's report reads them instead of downloading the layers (the
report after a one-file push on CodeBuild). Against the real registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from buildkit.config import loading as configmod
from buildkit.engine.registry import RegistryClient, split_ref
from buildkit.reports import sizesref
from buildkit.reports.measure import Measurer, Target
from tests.conftest import Project, layers_by_name

pytestmark = [pytest.mark.docker]


def _push_from_a_fresh_machine(project: Project, cache: Path) -> dict[str, dict[str, object]]:
    (project.root / "lib" / "nonce.rb").write_text(f"NONCE = {time.time_ns()}\n")
    result = project.run("app", "--push", "--json", extra_env={"IMGBUILD_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    return layers_by_name(json.loads(result.stdout))


def _layer_sizes(
    project: Project, cache: Path, image: str, *, read_blobs: bool
) -> list[int | None]:
    config = configmod.resolve(project.config, env=project.env({"IMGBUILD_CACHE_DIR": str(cache)}))
    measured = Measurer(config, read_blobs=read_blobs).measure([Target(layer="base", image=image)])
    assert measured[0] is not None, image
    return [layer.uncompressed for layer in measured[0].layers]


def test_a_fresh_machine_reads_the_layer_sizes_a_pushing_run_stored(
    project: Project, tmp_path: Path
) -> None:
    doc = _push_from_a_fresh_machine(project, tmp_path / "first-machine")
    for name in ("ruby", "base"):
        image = str(doc[name]["image"])
        host, repo, tag = split_ref(image)
        client = RegistryClient(host)
        digest = client.exists(repo, tag)
        assert digest is not None, image
        assert digest.startswith("sha256:"), image
        stored = sizesref.load(client, repo, digest)
        # Counted from the blobs by a machine that reads them (a third, empty cache dir).
        counted = _layer_sizes(project, tmp_path / f"reader-{name}", image, read_blobs=True)
        assert sorted(stored.values()) == sorted(c for c in counted if c is not None), name
        assert None not in counted
        # A fresh machine that may not read a single blob still has every size.
        spared = _layer_sizes(project, tmp_path / f"spared-{name}", image, read_blobs=False)
        assert spared == counted, name


def test_sizes_of_another_image_never_serve_this_one(project: Project, tmp_path: Path) -> None:
    doc = _push_from_a_fresh_machine(project, tmp_path / "machine")
    host, repo, tag = split_ref(str(doc["base"]["image"]))
    client = RegistryClient(host)
    digest = client.exists(repo, tag)
    assert digest is not None
    stored = sizesref.load(client, repo, digest)
    assert stored
    # Sizes stored under another digest's tag say nothing about this image.
    other = "sha256:" + "0" * 64
    assert sizesref.load(client, repo, other) == {}
    assert sizesref.tag_for(digest) == f"sha256-{digest.removeprefix('sha256:')}.sizes"
    assert sizesref.tag_for("md5:abc") is None
