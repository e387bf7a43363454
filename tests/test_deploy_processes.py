"""Process types and `--kustomize` end to end, on the real daemon and registry (docs/deploy.md):
the example app with a `worker` next to `web`, pushed by BuildKit and by the native assembly;
each process recorded in the pushed image's labels, `--json` giving every process the pushed
digest, the kustomization pinned to that digest with everything else kept, the worker runnable
from the image by digest, and a new worker command making a new image whose digest replaces the
old one in the kustomization.

The app goes to a repository of its own (`ecr.repositories.app`); the ruby and base images are
the example's own, already in the registry, so nothing is compiled.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from buildkit.engine.registry import RegistryClient, split_ref
from tests.conftest import Project, layers_by_name

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WORKER = "ruby lib/worker.rb"
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# The production overlay: web and worker Deployments run one image.
resources:
- deployment-web.yaml     # args: none, the image's CMD
- deployment-worker.yaml  # args: [ruby, lib/worker.rb]
images:
- name: redis
  newTag: "7.2"  # pinned by hand
- name: {name}
  newTag: not-a-digest-yet
"""


@pytest.fixture
def local_refs() -> Iterator[list[str]]:
    """Image refs this test makes local (a BuildKit build, a pull by digest); removed after."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


def with_worker(project: Project, tmp_path: Path) -> tuple[str, Path]:
    """The app in a repository of its own with a worker process; (repository, overlay dir)."""
    repo = f"i18proc-{project.name}-app-{uuid.uuid4().hex[:10]}"
    project.edit_config("app:\n", f"ecr:\n  repositories:\n    app: {repo}\napp:\n")
    project.edit_config(
        "  command: ruby app.rb\n", f"  command: ruby app.rb\n  processes:\n    worker: {WORKER}\n"
    )
    (project.root / "lib" / "worker.rb").write_text('puts "worker ran in #{Dir.pwd}"\n')
    overlay = tmp_path / "deploy" / "production"  # outside the app's context
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(KUSTOMIZATION.format(name=repo))
    return repo, overlay


def push(project: Project, overlay: Path, *, native: bool) -> tuple[dict[str, Any], str]:
    env = {} if native else {"IMGBUILD_NATIVE": "off"}
    result = project.run("app", "--push", "--kustomize", str(overlay), "--json", extra_env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), result.stderr


def registry_labels(client: RegistryClient, image: str) -> dict[str, str]:
    _, repo, tag = split_ref(image)
    manifest = client.manifest(repo, tag)
    assert manifest is not None, f"{image} is not in the registry"
    for entry in manifest.body.get("manifests") or ():  # engine 26: an index
        if (entry.get("annotations") or {}).get("vnd.docker.reference.type") is None:
            manifest = client.manifest(repo, str(entry["digest"]))
            assert manifest is not None
            break
    config = json.loads(client.blob(repo, str(manifest.body["config"]["digest"])))
    return dict(config["config"].get("Labels") or {})


@pytest.mark.parametrize("native", [True, False], ids=["native", "buildkit"])
def test_processes_are_labelled_reported_and_pinned_in_the_kustomization(
    project: Project, tmp_path: Path, local_refs: list[str], native: bool
) -> None:
    repo, overlay = with_worker(project, tmp_path)
    document, stderr = push(project, overlay, native=native)
    app = layers_by_name(document)["app"]
    assert (app["built"], app["pushed"]) == (True, True)
    assert app["path"] == ("native" if native else "buildkit"), app["path_reason"]
    local_refs.append(app["image"])
    digest = app["digest"]
    pinned = f"{project.dev.registry}/{repo}@{digest}"

    # --json: every process, its command, the one pushed digest.
    assert document["processes"] == [
        {"name": "web", "command": "ruby app.rb", "image": pinned},
        {"name": "worker", "command": WORKER, "image": pinned},
    ]
    assert f"processes web, worker: {pinned[: pinned.index('@') + 20]}" in stderr

    # The image in the registry says how to run each process.
    labels = registry_labels(RegistryClient(project.dev.registry), app["image"])
    assert labels["org.imgbuild.process.web"] == "ruby app.rb"
    assert labels["org.imgbuild.process.worker"] == WORKER
    assert labels["org.imgbuild.key"] == app["key"]

    # The kustomization: the app's entry pinned by digest, everything else as it was.
    text = (overlay / "kustomization.yaml").read_text()
    entry = f"- name: {repo}\n  newName: {project.dev.registry}/{repo}\n  digest: {digest}\n"
    stale = f"- name: {repo}\n  newTag: not-a-digest-yet\n"
    assert text == KUSTOMIZATION.format(name=repo).replace(stale, entry)
    assert document["kustomize"]["digest"] == digest
    assert document["kustomize"]["result"] == "updated"
    assert f"kustomize: {overlay / 'kustomization.yaml'}: images {repo} -> {pinned}" in stderr

    if not native:
        return
    # What a Deployment's `args:` does: the worker's command on the image, by digest.
    local_refs.append(pinned)
    ran = subprocess.run(
        ["docker", "run", "--rm", pinned, *WORKER.split()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout == "worker ran in /app\n"

    # Another worker command: another key, another image; its digest replaces the old one.
    project.edit_config(f"worker: {WORKER}\n", f"worker: {WORKER} --once\n")
    again, _ = push(project, overlay, native=True)
    moved = layers_by_name(again)["app"]
    assert moved["key"] != app["key"]
    assert moved["digest"] != digest
    assert f"process worker {WORKER} → {WORKER} --once" in moved["reasons"]
    local_refs.append(moved["image"])
    images = yaml.safe_load((overlay / "kustomization.yaml").read_text())["images"]
    assert images == [
        {"name": "redis", "newTag": "7.2"},
        {"name": repo, "newName": f"{project.dev.registry}/{repo}", "digest": moved["digest"]},
    ]
