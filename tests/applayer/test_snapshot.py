"""The app's source snapshot (applayer/snapshot.py): which Dockerfiles qualify, when a snapshot is
reused, its record, and the real build: an edit ships only the changed files, the tree stays the
same."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from buildkit.applayer import snapshot as delta
from buildkit.chain import layers
from buildkit.config import loading as configmod
from buildkit.engine.registry import RegistryClient, split_ref
from tests.conftest import Project, layers_by_name

SHIPPED = layers.shipped_dockerfile("app").read_text(encoding="utf-8")


# ---- which Dockerfiles qualify -----------------------------------------------------------------


def test_shipped_dockerfile_splits_after_its_context_copy() -> None:
    prefix = delta.snapshot_prefix(SHIPPED)
    assert prefix is not None
    assert SHIPPED.startswith(prefix)
    assert prefix.rstrip().endswith("COPY . /app/")
    assert "USER" not in prefix.split("COPY . /app/")[1]


@pytest.mark.parametrize(
    "text",
    [
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /app\nENV A=1 \\\n  B=2\n# hi\nCOPY . .\n",
        "FROM $BASE_IMAGE\nCOPY --chown=app:app . /app/\nRUN --mount=type=cache,target=/c ls\n",
        "FROM ${BASE_IMAGE}\nCOPY . /app/\nCOPY --from=assets /out /app/public\n",
        "FROM ${BASE_IMAGE}\nCOPY . /app/\nRUN --mount=type=bind,from=x,target=/x ls\n",
    ],
)
def test_dockerfiles_that_qualify(text: str) -> None:
    prefix = delta.snapshot_prefix(text)
    assert prefix is not None
    assert text.startswith(prefix)


@pytest.mark.parametrize(
    "text",
    [
        "FROM ${BASE_IMAGE}\nRUN apt-get update\nCOPY . /app/\n",  # would run again on top
        "FROM ${BASE_IMAGE}\nCOPY Gemfile /app/\nCOPY . /app/\n",  # a second context read
        "FROM ${BASE_IMAGE}\nCOPY . /app/\nADD extra.tar /opt/\n",
        "FROM ${BASE_IMAGE}\nCOPY . /app/\nRUN --mount=type=bind,target=/src make\n",
        "FROM ruby:3.3\nCOPY . /app/\n",  # not built on the chain's parent
        "FROM ${BASE_IMAGE} AS a\nFROM ${BASE_IMAGE}\nCOPY . /app/\n",
        "FROM ${BASE_IMAGE}\nUSER app\n",  # no context COPY at all
        "FROM ${BASE_IMAGE}\nVOLUME /data\nCOPY . /app/\n",
    ],
)
def test_dockerfiles_that_build_in_one_step(text: str) -> None:
    assert delta.snapshot_prefix(text) is None


# ---- when a snapshot is reused -------------------------------------------------------------------


def _spec(files: dict[str, str], frame: str = "f") -> delta.DeltaSpec:
    return delta.DeltaSpec(repository="reg/app", prefix="FROM x\n", frame=frame, tree=files)


def _tree(root: Path, sizes: dict[str, int]) -> None:
    for rel, size in sizes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * size)


def _snapshot(files: dict[str, str], size: int = 4_000_000, frame: str = "f") -> delta.Snapshot:
    return delta.Snapshot(image="reg/app:src-1", frame=frame, files=files, size=size)


def test_first_build_takes_a_snapshot_of_every_file(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.rb": 10, "lib/b.rb": 20})
    spec = _spec({"a.rb": "sha256:1", "lib/b.rb": "sha256:2"})
    decision = delta.decide(spec, None, tmp_path)
    assert decision.fresh
    assert decision.changed == ()
    assert decision.snapshot.size == 30
    assert decision.snapshot.image == spec.snapshot_image()
    assert decision.snapshot.image.startswith("reg/app:src-")


def test_edits_and_new_files_build_on_the_snapshot(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.rb": 10, "lib/b.rb": 20, "lib/new.rb": 5})
    previous = _snapshot({"a.rb": "sha256:1", "lib/b.rb": "sha256:2"})
    now = {"a.rb": "sha256:1", "lib/b.rb": "sha256:9+x", "lib/new.rb": "sha256:3"}
    decision = delta.decide(_spec(now), previous, tmp_path)
    assert not decision.fresh
    assert decision.snapshot is previous
    assert decision.changed == ("lib/b.rb", "lib/new.rb")  # a mode change is a change too


@pytest.mark.parametrize(
    ("now", "named"),
    [
        ({"a.rb": "sha256:1"}, "lib/b.rb"),  # deleted: COPY cannot delete
        ({"a.rb": "sha256:1", "lib/b.rb": "link:../a.rb"}, "lib/b.rb"),  # file -> symlink
    ],
)
def test_deletions_take_a_new_snapshot(tmp_path: Path, now: dict[str, str], named: str) -> None:
    _tree(tmp_path, {"a.rb": 10})
    previous = _snapshot({"a.rb": "sha256:1", "lib/b.rb": "sha256:2"})
    decision = delta.decide(_spec(now), previous, tmp_path)
    assert decision.fresh
    assert named in decision.why
    assert dict(decision.snapshot.files) == now


def test_a_changed_frame_takes_a_new_snapshot(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.rb": 10})
    previous = _snapshot({"a.rb": "sha256:1"}, frame="old")
    decision = delta.decide(_spec({"a.rb": "sha256:1"}, frame="new"), previous, tmp_path)
    assert decision.fresh
    assert "parent or Dockerfile" in decision.why


def test_a_delta_past_its_limit_takes_a_new_snapshot(tmp_path: Path) -> None:
    big = delta.MIN_DELTA_BYTES + 1
    _tree(tmp_path, {"a.rb": 10, "big.bin": big})
    previous = _snapshot({"a.rb": "sha256:1"}, size=1000)
    grown = {"a.rb": "sha256:1", "big.bin": "sha256:2"}
    assert delta.decide(_spec(grown), previous, tmp_path).fresh
    # The same delta on a snapshot four times its size is within a quarter of it.
    roomy = _snapshot({"a.rb": "sha256:1"}, size=4 * big)
    assert not delta.decide(_spec(grown), roomy, tmp_path).fresh


def test_snapshot_image_follows_files_and_frame() -> None:
    one = _spec({"a.rb": "sha256:1"}).snapshot_image()
    assert _spec({"a.rb": "sha256:1"}).snapshot_image() == one
    assert _spec({"a.rb": "sha256:2"}).snapshot_image() != one
    assert _spec({"a.rb": "sha256:1"}, frame="g").snapshot_image() != one


def test_frame_covers_prefix_parent_and_build_args() -> None:
    base = delta.frame_digest("FROM x\n", "reg/base:1", {"BASE_IMAGE": "z", "A": "1"})
    assert delta.frame_digest("FROM x\n", "reg/base:1", {"A": "1"}) == base
    assert delta.frame_digest("FROM y\n", "reg/base:1", {"A": "1"}) != base
    assert delta.frame_digest("FROM x\n", "reg/base:2", {"A": "1"}) != base
    assert delta.frame_digest("FROM x\n", "reg/base:1", {"A": "2"}) != base


# ---- the record --------------------------------------------------------------------------------


def test_record_round_trip_and_damage(tmp_path: Path) -> None:
    snapshot = _snapshot({"a.rb": "sha256:1", "b b.rb": "link:x"}, size=123)
    assert delta.load(tmp_path, "reg:5000/app") is None
    delta.save(tmp_path, "reg:5000/app", snapshot)
    assert delta.load(tmp_path, "reg:5000/app") == snapshot
    (path,) = (tmp_path / "snapshots").iterdir()
    path.write_text('{"version": 1, "files": []}')
    assert delta.load(tmp_path, "reg:5000/app") is None  # a cache: damage means "none"
    assert not list((tmp_path / "snapshots").glob(".*.tmp"))


# ---- planning on the example app -----------------------------------------------------------------


def test_example_app_plans_a_delta_without_the_bulk(project: Project) -> None:
    images = project.root / "app" / "assets" / "images"
    images.mkdir(parents=True)
    (images / "logo.png").write_bytes(b"png")
    app = layers.chain(configmod.resolve(project.config, env=project.env()))[2]
    assert app.delta is not None
    assert app.bulk is not None
    assert "lib/greeting.rb" in app.delta.files
    assert "app/assets/images/logo.png" not in app.delta.files  # in the bulk image
    assert app.delta.prefix.rstrip().endswith("COPY . /app/")


def test_delta_can_be_turned_off_and_is_checked(project: Project) -> None:
    project.edit_config("  port: 8080", "  port: 8080\n  delta: false")
    app = layers.chain(configmod.resolve(project.config, env=project.env()))[2]
    assert app.delta is None
    project.edit_config("delta: false", "delta: sometimes")
    result = project.run("plan")
    assert result.returncode == 3, result.stderr
    assert "app.delta" in result.stderr
    assert "Traceback" not in result.stderr


# ---- the real build ------------------------------------------------------------------------------


def _tree_listing(image: str) -> dict[str, str]:
    """path -> "mode owner size" of everything under /app in the image."""
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
         "cd /app && find . -printf '%p|%m %u:%g %s %y\\n'"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    rows = [line.split("|", 1) for line in out.splitlines() if line]
    return {row[0]: row[1] for row in rows}


def _app_doc(project: Project) -> tuple[dict[str, Any], str]:
    # The snapshot is for an app BuildKit builds (a Dockerfile that runs something after the
    # COPY): with the registry-native path off, a pushed app is such an app.
    result = project.run("app", "--push", "--json", extra_env={"IMGBUILD_NATIVE": "off"})
    assert result.returncode == 0, result.stderr[-3000:]
    return layers_by_name(json.loads(result.stdout))["app"], result.stderr


def _layer_sizes(image: str) -> list[int]:
    host, repo, tag = split_ref(image)
    manifest = RegistryClient(host).manifest(repo, tag)
    assert manifest is not None
    return [int(layer["size"]) for layer in manifest.body["layers"]]


def _edit(project: Project, text: str) -> None:
    greeting = project.root / "lib" / "greeting.rb"
    greeting.write_text(greeting.read_text() + text)


@pytest.mark.docker
@pytest.mark.slow
def test_source_edits_ship_the_changed_files_on_the_snapshot(project: Project) -> None:
    (project.root / "lib" / "run_id.rb").write_text(f"# {uuid.uuid4().hex}\n")  # a new app key
    first, log = _app_doc(project)
    assert "source snapshot" not in log  # a machine's first build (a CI runner's) is one step
    assert first["snapshot"] is None
    one_step = _tree_listing(str(first["image"]))

    _edit(project, "# edit 1\n")
    second, log = _app_doc(project)
    assert "building its source snapshot" in log
    assert "no snapshot yet" in log
    assert second["snapshot"]["taken"]
    assert second["snapshot"]["changed_files"] == 0
    before = _tree_listing(str(second["image"]))
    assert set(before) == set(one_step)  # the same tree, split in two layers

    _edit(project, "# edit 2\n")
    added = project.root / "app" / "jobs" / "new_job.rb"
    added.parent.mkdir(parents=True)
    added.write_text("class NewJob; end\n")
    added.chmod(0o755)
    third, log = _app_doc(project)
    assert "building on its source snapshot" in log
    assert "building its source snapshot" not in log
    assert third["snapshot"] == {**second["snapshot"], "taken": False, "changed_files": 2,
                                 "why": "2 changed file(s) since the snapshot"}  # fmt: skip
    assert third["built"]
    assert third["image"] != second["image"]
    sizes = _layer_sizes(str(third["image"]))
    assert sizes[-1] < 2_000  # the two changed files, not the tree
    after = _tree_listing(str(third["image"]))
    # Same tree as before plus the new file and its directory: modes and owners unchanged.
    new = {"./app/jobs", "./app/jobs/new_job.rb"}
    assert set(after) == set(before) | new
    assert after["./app/jobs/new_job.rb"].startswith("755 root:root 18 f")
    for path in set(before) - {"./lib/greeting.rb"}:
        if before[path].endswith(" f"):
            assert after[path] == before[path], path
    size = (project.root / "lib" / "greeting.rb").stat().st_size
    assert after["./lib/greeting.rb"] == f"644 root:root {size} f"

    # A deletion cannot be expressed by COPY: the whole source is snapshotted again.
    (project.root / "lib" / "routes.rb").unlink()
    fourth, log = _app_doc(project)
    assert "building its source snapshot" in log
    assert "lib/routes.rb was deleted" in log
    assert fourth["snapshot"]["taken"]
    assert fourth["snapshot"]["image"] != second["snapshot"]["image"]
    final = _tree_listing(str(fourth["image"]))
    assert "./lib/routes.rb" not in final
    assert set(final) == set(after) - {"./lib/routes.rb"}
    staged = project.cache_dir / "contexts"
    assert not list(staged.glob("*/delta"))  # no hard links to the app's files are kept
