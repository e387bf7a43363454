"""`--kustomize DIR` (run/kustomize.py) on real files: the app's `images:` entry set by digest,
everything else in the file kept byte for byte, atomic writes, one-line errors before a build;
and the `processes` of the run summary (run/summary.py) that a deploy reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from buildkit.chain.model import LayerOutcome, LayerPlan, LayerSpec
from buildkit.config import loading
from buildkit.errors import InputError, PushFailedError
from buildkit.run import kustomize, summary

DIGEST = "sha256:" + "a" * 64
OLD = "sha256:" + "b" * 64
REPO = "127.0.0.1:5000/team/shop-app"
ENTRY = kustomize.ImageEntry(name="shop-app", new_name=REPO, digest=DIGEST)
PINNED = f"- name: shop-app\n  newName: {REPO}\n  digest: {DIGEST}\n"

OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# The production overlay: web and worker run the same image.
resources:
  - ../../base   # deployment-web.yaml, deployment-worker.yaml
namePrefix: prod-
images:
- name: redis
  newTag: "7.2"  # pinned by hand
- name: shop-app
  newTag: 3f1c2a9b8d7e   # set by the last deploy
# ConfigMaps below.
configMapGenerator:
- name: shop-env
  literals: [RAILS_ENV=production]
"""


def write(directory: Path, text: str, name: str = "kustomization.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def loaded(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


# -- the edit ---------------------------------------------------------------------------------


def test_an_existing_entry_is_replaced_and_every_other_line_kept(tmp_path: Path) -> None:
    path = write(tmp_path, OVERLAY)
    assert kustomize.set_image(path, ENTRY) == "updated"
    old_entry = "- name: shop-app\n  newTag: 3f1c2a9b8d7e   # set by the last deploy\n"
    assert path.read_text() == OVERLAY.replace(old_entry, PINNED)
    images = loaded(path)["images"]
    assert images == [{"name": "redis", "newTag": "7.2"}, ENTRY.as_dict()]


def test_a_new_entry_goes_after_the_others_at_their_indentation(tmp_path: Path) -> None:
    text = "resources:\n- app.yaml\nimages:\n  - name: redis  # cache\n    newTag: '7'\n\nx: 1\n"
    path = write(tmp_path, text)
    assert kustomize.set_image(path, ENTRY) == "added"
    indented = "".join(f"  {line}\n" for line in PINNED.splitlines())
    expected = text.replace("    newTag: '7'\n", "    newTag: '7'\n" + indented)
    assert path.read_text() == expected


def test_without_images_the_list_is_appended(tmp_path: Path) -> None:
    text = "# overlay\nresources:\n- app.yaml  # web, worker\n"
    path = write(tmp_path, text)
    assert kustomize.set_image(path, ENTRY) == "added"
    assert path.read_text() == text + "images:\n" + PINNED


@pytest.mark.parametrize(
    "text",
    ["images:\nresources: [a.yaml]\n", "images: ~\nresources: [a.yaml]\n", "images: []\n"],
    ids=["empty", "null", "empty list"],
)
def test_an_empty_images_gets_the_entry(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    kustomize.set_image(path, ENTRY)
    assert path.read_text().startswith("images:\n" + PINNED)
    assert loaded(path)["images"] == [ENTRY.as_dict()]


def test_flow_style_entries_stay_flow_style(tmp_path: Path) -> None:
    path = write(tmp_path, "images: [{name: redis, newTag: '7'}]  # flow\n")
    kustomize.set_image(path, ENTRY)
    text = path.read_text()
    assert text.startswith('images: [{"name": "redis", "newTag": "7"}, {"name": "shop-app"')
    assert text.endswith("]  # flow\n")
    assert loaded(path)["images"] == [{"name": "redis", "newTag": "7"}, ENTRY.as_dict()]


def test_crlf_line_ends_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "kustomization.yaml"
    path.write_bytes(b"images:\r\n- name: redis\r\n  newTag: '7'\r\n")
    kustomize.set_image(path, ENTRY)
    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data.endswith(f"  digest: {DIGEST}\r\n".encode())
    assert loaded(path)["images"] == [{"name": "redis", "newTag": "7"}, ENTRY.as_dict()]


def test_a_layout_the_edit_cannot_keep_is_rewritten_whole(tmp_path: Path) -> None:
    path = write(tmp_path, "{resources: [a.yaml], namePrefix: x-}  # one line\n")
    kustomize.set_image(path, ENTRY)
    assert loaded(path) == {
        "resources": ["a.yaml"],
        "namePrefix": "x-",
        "images": [ENTRY.as_dict()],
    }


def test_the_same_entry_again_leaves_the_file_alone(tmp_path: Path) -> None:
    path = write(tmp_path, OVERLAY)
    kustomize.set_image(path, ENTRY)
    inode, text = path.stat().st_ino, path.read_text()
    assert kustomize.set_image(path, ENTRY) == "unchanged"
    assert (path.stat().st_ino, path.read_text()) == (inode, text)


def test_the_write_is_a_rename_keeping_the_mode(tmp_path: Path) -> None:
    path = write(tmp_path, OVERLAY)
    path.chmod(0o664)
    inode = path.stat().st_ino
    kustomize.set_image(path, ENTRY)
    assert path.stat().st_ino != inode  # a new file renamed over it, never rewritten in place
    assert path.stat().st_mode & 0o777 == 0o664
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kustomization.yaml"]


# -- the files kustomize reads, and the errors ------------------------------------------------


@pytest.mark.parametrize("name", kustomize.FILE_NAMES)
def test_each_name_kustomize_reads_is_found(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / "overlay", "resources: []\n", name)
    assert kustomize.locate(tmp_path / "overlay") == path


def test_a_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--kustomize .*/nowhere does not exist") as info:
        kustomize.locate(tmp_path / "nowhere")
    assert info.value.exit_code == 4
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is not a directory"):
        kustomize.locate(tmp_path / "file")


def test_a_directory_without_a_kustomization_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"has no kustomization\.yaml, kustomization\.yml, Kust"):
        kustomize.locate(tmp_path)


def test_two_kustomizations_are_refused_as_kustomize_does(tmp_path: Path) -> None:
    write(tmp_path, "resources: []\n")
    write(tmp_path, "resources: []\n", "kustomization.yml")
    with pytest.raises(InputError, match=r"kustomization\.yaml and kustomization\.yml"):
        kustomize.locate(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resources: [a.yaml\nimages: []\n", r"kustomization.yaml:\d+: invalid YAML"),
        ("- a.yaml\n", r"kustomization.yaml:1: a kustomization is a mapping"),
        ("x: !!python/object:os.system {}\n", r"kustomization.yaml:1: invalid YAML"),
        ("x: 1\nimages: shop-app\n", r"kustomization.yaml:2: images must be a list of entries"),
        ("images:\n- shop-app\n", r"kustomization.yaml:2: images must be a list of entries"),
        (
            "images:\n- name: shop-app\n  newTag: a\n- name: shop-app\n  newTag: b\n",
            r"kustomization.yaml:2: images names shop-app more than once",
        ),
    ],
    ids=["syntax", "not a mapping", "unsafe tag", "not a list", "not entries", "twice"],
)
def test_a_file_imgbuild_cannot_edit_fails_the_check_and_stays(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        kustomize.check(path, "shop-app")
    assert "\n" not in info.value.message
    with pytest.raises(InputError):
        kustomize.set_image(path, ENTRY)
    assert path.read_text() == text


# -- from the config and the run --------------------------------------------------------------


def config(tmp_path: Path, extra: str = "") -> loading.Config:
    path = tmp_path / "imgbuild.yaml"
    text = 'name: shop\nregistry: 127.0.0.1:5000/team\nruby:\n  version: "3.3.8"\n'
    path.write_text(text + extra)
    return loading.resolve(path, env={})


def app_outcome(digest: str | None, processes: tuple[tuple[str, str], ...]) -> LayerOutcome:
    spec = LayerSpec(
        name="app",
        repository=REPO,
        key="c" * 64,
        parent=None,
        dockerfile=Path("Dockerfile"),
        context=None,
        ignore=(),
        build_args={},
        inputs={},
        processes=processes,
    )
    plan = LayerPlan(spec=spec, status="build", reasons=(), local_id=None, remote_digest=None)
    return LayerOutcome(plan=plan, digest=digest, pushed=digest is not None)


def test_prepare_names_the_app_repository_or_kustomize_name(tmp_path: Path) -> None:
    app, overlay = tmp_path / "app", tmp_path / "k"
    app.mkdir()
    write(overlay, "resources: []\n")
    assert kustomize.prepare(config(app), overlay).name == "shop-app"
    named = config(app, "kustomize:\n  name: web-image\n")
    assert kustomize.prepare(named, overlay).name == "web-image"
    ecr = config(app, "ecr:\n  repositories: {app: shop/web}\n")
    assert kustomize.prepare(ecr, overlay).name == "shop/web"


def test_a_kustomization_in_the_apps_source_is_refused_unless_ignored(tmp_path: Path) -> None:
    """The app image would copy it: each pinned digest would make the next build a new image."""
    overlay = tmp_path / "deploy" / "production"
    write(overlay, "resources: []\n")
    with pytest.raises(InputError) as info:
        kustomize.prepare(config(tmp_path), overlay)
    assert "is in the app's source" in info.value.message
    assert f"add /deploy to {tmp_path.resolve() / '.dockerignore'}" in info.value.message
    (tmp_path / ".dockerignore").write_text("deploy/\n")
    assert kustomize.prepare(config(tmp_path), overlay).path == overlay / "kustomization.yaml"


def test_pin_writes_the_pushed_digest(tmp_path: Path) -> None:
    path = write(tmp_path / "k", OVERLAY)
    target = kustomize.Target(path=path, name="shop-app")
    written = kustomize.pin(target, [app_outcome(DIGEST, (("web", "bin/web"),))])
    assert written == {"file": str(path), **ENTRY.as_dict(), "result": "updated"}
    assert loaded(path)["images"] == [{"name": "redis", "newTag": "7.2"}, ENTRY.as_dict()]
    with pytest.raises(PushFailedError, match="no pushed app image"):
        kustomize.pin(target, [app_outcome(None, (("web", "bin/web"),))])


def test_summary_gives_every_process_the_one_pinned_image() -> None:
    processes = (("web", "bin/web"), ("worker", "bin/jobs"))
    data = summary.run_summary([app_outcome(DIGEST, processes)], 1.0)
    assert data["processes"] == [
        {"name": "web", "command": "bin/web", "image": f"{REPO}@{DIGEST}"},
        {"name": "worker", "command": "bin/jobs", "image": f"{REPO}@{DIGEST}"},
    ]
    line = summary.processes_line(app_outcome(DIGEST, processes))
    assert line == f"processes web, worker: {REPO}@sha256:{'a' * 12}"


def test_summary_without_a_registry_digest_has_no_image() -> None:
    outcome = app_outcome(None, (("web", "bin/web"),))
    assert summary.run_summary([outcome], 1.0)["processes"] == [
        {"name": "web", "command": "bin/web", "image": None}
    ]
    assert summary.processes_line(outcome).endswith("(not pushed)")
    base = dataclasses.replace(outcome.plan.spec, name="base")
    plan = dataclasses.replace(outcome.plan, spec=base)
    assert "processes" not in summary.run_summary([LayerOutcome(plan=plan)], 1.0)
