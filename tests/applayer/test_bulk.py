"""The app's bulk files in layers of their own (bulk.py): planning, and the real build."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from buildkit.applayer import bulk, dockerfile
from buildkit.chain import layers
from buildkit.config import loading as configmod
from buildkit.engine.registry import RegistryClient, split_ref
from tests.conftest import Project, layers_by_name

DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app/\nUSER app\n"
FILES = {
    "app/assets/images/logo.png": "sha256:1",
    "app/assets/images/icons/a.svg": "sha256:2",
    "app/models/user.rb": "sha256:3",
    "public/assets/app-123.js": "sha256:4",
}


def plan(
    files: dict[str, str] = FILES,
    paths: tuple[str, ...] = configmod.DEFAULT_BULK,
    dockerfile: str = DOCKERFILE,
) -> bulk.BulkSpec | None:
    return bulk.spec_for(
        paths=paths,
        files=files,
        base_key="b" * 64,
        app_dockerfile_text=dockerfile,
        repository="reg:5000/hello-app",
        ignore=(".git",),
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("COPY . /app/", ("/app/", "")),
        ("copy --chown=app:app . /srv/app", ("/srv/app", "--chown=app:app")),
        ('COPY [".", "/rails"]', ("/rails", "")),
        ("COPY . .", (".", "")),
    ],
)
def test_context_copy_is_found(line: str, expected: tuple[str, str]) -> None:
    assert dockerfile.context_copy(f"FROM x\n{line}\nUSER app\n") == expected


@pytest.mark.parametrize(
    "text",
    [
        "FROM x\nCOPY --from=build . /app/\n",  # not the context
        "FROM x\nCOPY Gemfile /app/\nCOPY lib /app/lib\n",  # no whole-context copy
        "FROM x\nCOPY . /app/\nCOPY . /srv/\n",  # two: which one would the bulk mirror?
    ],
)
def test_no_single_context_copy_means_no_bulk(text: str) -> None:
    assert dockerfile.context_copy(text) is None
    assert plan(dockerfile=text) is None


def test_bulk_covers_present_paths_and_renders_one_copy_each() -> None:
    spec = plan()
    assert spec is not None
    assert spec.paths == ("app/assets/images", "public/assets")  # fonts, vendor: no files
    assert spec.files == 3
    assert spec.image == f"reg:5000/hello-app:bulk-{spec.key[:12]}"
    assert spec.exclusions() == spec.paths
    assert spec.dockerfile().splitlines()[1:] == [
        "ARG BASE_IMAGE",
        "FROM ${BASE_IMAGE}",
        'COPY ["app/assets/images", "/app/app/assets/images"]',
        'COPY ["public/assets", "/app/public/assets"]',
    ]
    chowned = plan(dockerfile="FROM x\nCOPY --chown=app:app . .\n")
    assert chowned is not None
    assert 'COPY --chown=app:app ["public/assets", "./public/assets"]' in chowned.dockerfile()


def test_bulk_key_follows_bulk_files_only() -> None:
    first = plan()
    source_edit = plan({**FILES, "app/models/user.rb": "sha256:changed"})
    image_edit = plan({**FILES, "app/assets/images/logo.png": "sha256:changed"})
    assert first is not None
    assert source_edit is not None
    assert image_edit is not None
    assert source_edit.key == first.key
    assert image_edit.key != first.key


def test_nested_paths_and_no_files() -> None:
    spec = plan(paths=("app/assets", "app/assets/images"))
    assert spec is not None
    assert spec.paths == ("app/assets",)
    assert plan(files={"app/models/user.rb": "sha256:3"}) is None
    assert plan(paths=()) is None


def test_example_app_without_bulk_files_keeps_its_key(project: Project) -> None:
    config = configmod.resolve(project.config, env=project.env())
    app = layers.chain(config)[2]
    assert app.bulk is None
    assert "bulk paths" not in app.inputs
    assert app.build_args["BASE_IMAGE"].rpartition(":")[0].endswith("hello-base")


@pytest.mark.docker
@pytest.mark.slow
def test_source_change_pushes_the_source_without_the_bulk(project: Project) -> None:
    images = project.root / "app" / "assets" / "images"
    images.mkdir(parents=True)
    (images / "hero.bin").write_bytes(os.urandom(1_500_000))  # incompressible, new every run
    first = project.run("app", "--push")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "building its bulk image" in first.stderr
    app_image = project.run_json("plan")["layers"][-1]["image"]

    greeting = project.root / "lib" / "greeting.rb"
    greeting.write_text(greeting.read_text() + "# an edit\n")
    second = project.run("app", "--push", "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "building its bulk image" not in second.stderr  # the bulk image is reused
    doc = layers_by_name(json.loads(second.stdout))
    assert [doc[n]["built"] for n in ("ruby", "base", "app")] == [False, False, True]
    assert doc["app"]["image"] != app_image

    host, repo, tag = split_ref(doc["app"]["image"])
    manifest = RegistryClient(host).manifest(repo, tag)
    assert manifest is not None
    sizes = [int(layer["size"]) for layer in manifest.body["layers"]]
    # Assembled in the registry (run/native.py) on the bulk image, never rebuilt: over the base
    # its bulk layer (the image), then one layer of the source alone, a few kB of Ruby.
    assert doc["app"]["path"] == "native", doc["app"]
    assert sizes[-2] > 1_400_000
    assert sizes[-1] < 200_000
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", doc["app"]["image"], "-c",
         "wc -c < /app/app/assets/images/hero.bin; tail -1 /app/lib/greeting.rb"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split("\n")  # fmt: skip
    assert out[0].strip() == "1500000"
    assert out[1] == "# an edit"


def test_bulk_takes_real_directories_only(project: Project) -> None:
    images = project.root / "app" / "assets" / "images"
    images.mkdir(parents=True)
    (images / "logo.png").write_bytes(b"\x89PNG fake")
    shared = project.root / "shared-assets"
    shared.mkdir()
    (shared / "app.js").write_text("//")
    (project.root / "public" / "assets").parent.mkdir(exist_ok=True)
    (project.root / "public" / "assets").symlink_to(shared)
    config = configmod.resolve(project.config, env=project.env())
    app = layers.chain(config)[2]
    assert app.bulk is not None
    assert app.bulk.paths == ("app/assets/images",)  # the symlinked public/assets stays in COPY .
    assert app.build_args["BASE_IMAGE"] == app.bulk.image
    assert "app/assets/images" in app.ignore
    assert app.inputs["bulk paths"] == "app/assets/images"


def test_bulk_lands_where_a_relative_context_copy_does() -> None:
    text = (
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG ROOT=/srv\nWORKDIR ${ROOT}/shop\n"
        "COPY --chown=app:app . .\nUSER app\n"
    )
    spec = plan(dockerfile=text)
    assert spec is not None
    assert spec.setup == ("ARG ROOT=/srv", "WORKDIR ${ROOT}/shop")
    lines = spec.dockerfile().splitlines()
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY")]
    assert lines.index("WORKDIR ${ROOT}/shop") < copies[0]  # `./app/assets/...` under /srv/shop
    assert lines[copies[0]] == 'COPY --chown=app:app ["app/assets/images", "./app/assets/images"]'
    assert spec.key != plan(dockerfile=text.replace("/shop", "/store")).key


def test_default_dockerfile_has_no_setup_to_repeat() -> None:
    spec = plan()
    assert spec is not None
    assert spec.setup == ()
    assert "WORKDIR" not in spec.dockerfile()
