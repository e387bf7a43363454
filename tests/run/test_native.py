"""The app assembled straight in the registry (run/native.py), end to end on the real daemon and
registry: the same files and settings as BuildKit's image, one digest per commit on any machine,
BuildKit with a reason when the Dockerfile needs a build, no daemon needed, the inputs beside
the image and not in its config.

Every test pushes its app to a repository of its own (`ecr.repositories.app`), named through an
environment variable (`${IMGBUILD_TEST_APP_REPO}` in imgbuild.yaml): the config file is part of
the app's context, so the file (and with it the app's key, its labels and the layer) stays the
same whichever repository a run pushes to. The ruby and base images are the example's own
(`hello-ruby`, `hello-base`), already in the registry, so no test compiles anything.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from buildkit.engine.registry import Manifest, RegistryClient, split_ref
from tests.conftest import Project, layers_by_name
from tests.engines import Engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO_VAR = "IMGBUILD_TEST_APP_REPO"
INPUTS_LABEL = "org.imgbuild.inputs"
# The labels whose values differ between a BuildKit build and a native assembly of one source:
# BuildKit stamps the time of the build, the native path the commit time.
TIMELY_LABELS = frozenset({"org.opencontainers.image.created"})
CONFIG_FIELDS = (
    "Env",
    "User",
    "WorkingDir",
    "Cmd",
    "Entrypoint",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "ArgsEscaped",
    "Healthcheck",
    "Shell",
)
ORIGIN = "https://git.example.invalid/shop/hello.git"
LONG_NAME = "lib/" + "long-directory-name/" * 6 + "a-file-whose-path-is-over-100-bytes.rb"


# -- helpers ---------------------------------------------------------------------------------


def docker(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr[-2000:]}"
    return result


def new_repo(project: Project, what: str) -> str:
    return f"{project.name}-app-native-{what}-{uuid.uuid4().hex[:10]}"


def own_app_repository(project: Project) -> None:
    """The app's repository comes from $IMGBUILD_TEST_APP_REPO (see the module docstring)."""
    project.edit_config("app:\n", f"ecr:\n  repositories:\n    app: ${{{REPO_VAR}}}\napp:\n")


def run_app(
    project: Project, repo: str, *args: str, env: Mapping[str, str] | None = None
) -> tuple[dict[str, dict[str, Any]], str]:
    """`imgbuild <args> --json` pushing the app to `repo`: (layers by name, stderr)."""
    result = project.run(*args, "--json", extra_env={REPO_VAR: repo, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return layers_by_name(json.loads(result.stdout)), result.stderr


def registry_image(client: RegistryClient, ref: str) -> tuple[Manifest, dict[str, Any]]:
    """(image manifest, config) of `ref` as the registry has it (an index resolved to its image
    entry, never an attestation's)."""
    _, repo, tag = split_ref(ref)
    manifest = client.manifest(repo, tag)
    assert manifest is not None, f"{ref} is not in the registry"
    for entry in manifest.body.get("manifests") or ():
        kind = (entry.get("annotations") or {}).get("vnd.docker.reference.type")
        if kind != "attestation-manifest":
            manifest = client.manifest(repo, str(entry["digest"]))
            assert manifest is not None
            break
    config = json.loads(client.blob(repo, str(manifest.body["config"]["digest"])))
    return manifest, config


def app_tree(image: str) -> tuple[list[str], list[str]]:
    """Every entry under /app in `image` (path, type, mode, uid, gid, symlink target) and every
    regular file's sha256, both sorted; read by the image's own find and sha256sum."""
    script = (
        "find /app -printf '%p\\t%y\\t%m\\t%U\\t%G\\t%l\\n' | LC_ALL=C sort; echo ===; "
        "find /app -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"
    )
    out = docker("run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c", script).stdout
    entries, _, sums = out.partition("===\n")
    return entries.splitlines(), sums.splitlines()


def wait_for_output(container: str, needle: str, deadline_s: float = 60.0) -> None:
    """Follow the container's log until `needle` appears (the app has bound its port)."""
    follow = subprocess.Popen(
        ["docker", "logs", "--follow", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert follow.stdout is not None
    seen = b""
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(follow.stdout, selectors.EVENT_READ)
            end = time.monotonic() + deadline_s
            while needle.encode() not in seen:
                left = end - time.monotonic()
                assert left > 0, f"{container} never printed {needle!r}: {seen.decode()[-2000:]}"
                if selector.select(left):
                    chunk = os.read(follow.stdout.fileno(), 65536)
                    assert chunk, f"{container} stopped before {needle!r}: {seen.decode()[-2000:]}"
                    seen += chunk
    finally:
        follow.terminate()
        follow.wait(timeout=30)


def http_answer(image: str, path: str = "/") -> str:
    """Run `image` as is (its CMD, published on 127.0.0.1 only) and GET `path` once it listens."""
    container = docker("run", "-d", "-p", "127.0.0.1::8080", image).stdout.strip()
    try:
        address = docker("port", container, "8080/tcp").stdout.split()[0]
        assert address.startswith("127.0.0.1:"), address
        wait_for_output(container, "hello: listening on")
        with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as response:
            return str(response.read().decode())
    finally:
        # Removed here, not by --rm: that removal runs after `docker stop` returns, and the
        # image could not be removed while it lasts.
        docker("rm", "-f", container, check=False)


@pytest.fixture
def local_refs() -> Iterator[list[str]]:
    """Image refs a test makes local (a BuildKit build, a `docker run` pull); removed after."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        removed = docker("image", "rm", ref, check=False)
        assert removed.returncode == 0 or "No such image" in removed.stderr, removed.stderr


def odd_source(root: Path) -> None:
    """Entries that a context COPY must get right: an executable, symlinks (relative, absolute
    and dangling), nested and empty directories, a private mode, a non-ASCII name, a name over
    the 100 bytes of a ustar header, and files the .dockerignore (or imgbuild) leaves out."""
    (root / "bin").mkdir()
    script = root / "bin" / "hello"
    script.write_text("#!/bin/sh\necho hello from bin\n")
    script.chmod(0o755)
    (root / "lib" / "current_greeting.rb").symlink_to("greeting.rb")
    (root / "config" / "hostname").symlink_to("/etc/hostname")
    (root / "config" / "dangling").symlink_to("../nowhere/at/all")
    nested = root / "lib" / "deep" / "er"
    nested.mkdir(parents=True)
    (nested / "nested.rb").write_text("NESTED = :yes\n")
    # `*.md` in .dockerignore is anchored at the context's root, as Docker reads it: the
    # CHANGELOG is left out, the nested NOTES.md is copied.
    (root / "CHANGELOG.md").write_text("ignored by *.md\n")
    (root / "lib" / "deep" / "NOTES.md").write_text("not matched by *.md\n")
    (root / "public" / "empty").mkdir(parents=True)
    private = root / "config" / "private.txt"
    private.write_text("group-readable only\n")
    private.chmod(0o640)
    (root / "lib" / "grüße.txt").write_text("non-ASCII name\n")
    long_file = root / LONG_NAME
    long_file.parent.mkdir(parents=True)
    long_file.write_text("LONG = 1\n")
    (root / "coverage").mkdir()
    (root / "coverage" / "index.html").write_text("ignored: coverage/\n")
    (root / "tmp" / "cache.bin").write_text("ignored by imgbuild's runtime patterns\n")


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "imgbuild tests",
        "GIT_AUTHOR_EMAIL": "tests@imgbuild.invalid",
        "GIT_COMMITTER_NAME": "imgbuild tests",
        "GIT_COMMITTER_EMAIL": "tests@imgbuild.invalid",
    }
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def committed(root: Path) -> str:
    """Make `root` a checkout of one commit (on main, with an origin); its commit id."""
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", ORIGIN)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one commit")
    return git(root, "rev-parse", "HEAD").strip()


# -- 1. the same image as BuildKit's ---------------------------------------------------------


@pytest.mark.engines
def test_native_and_buildkit_images_of_one_source_are_equivalent(
    project: Project, engine: Engine, local_refs: list[str]
) -> None:
    """One source, pushed once by BuildKit (IMGBUILD_NATIVE=off) and once natively, to two
    repositories on the same base: the same files under /app (paths, types, modes, owners,
    symlink targets, contents), the same settings and labels, the same HTTP answer."""
    own_app_repository(project)
    odd_source(project.root)
    commit = committed(project.root)  # so that both carry the revision and source labels
    client = RegistryClient(project.dev.registry)

    built, stderr = run_app(
        project, new_repo(project, "bk"), "app", "--push", env={"IMGBUILD_NATIVE": "off"}
    )
    by_buildkit = built["app"]
    assert (by_buildkit["built"], by_buildkit["pushed"]) == (True, True)
    assert by_buildkit["path"] == "buildkit"
    assert by_buildkit["path_reason"] == "IMGBUILD_NATIVE=off"
    assert "app: building with BuildKit: IMGBUILD_NATIVE=off" in stderr
    local_refs.append(by_buildkit["image"])

    assembled, stderr = run_app(project, new_repo(project, "nt"), "app", "--push")
    native = assembled["app"]
    assert (native["built"], native["pushed"]) == (True, True)
    assert native["path"] == "native", native["path_reason"]
    assert native["path_reason"] is None
    assert built["base"]["image"] == assembled["base"]["image"]
    assert (
        f"app: assembling {native['image']} in the registry on {assembled['base']['image']}"
        " (no daemon)" in stderr
    )
    assert native["key"] == by_buildkit["key"]
    local_refs.append(native["image"])

    # The files under /app.
    bk_entries, bk_sums = app_tree(by_buildkit["image"])
    nt_entries, nt_sums = app_tree(native["image"])
    assert nt_entries == bk_entries
    assert nt_sums == bk_sums
    listed = {line.split("\t")[0]: line.split("\t")[1:] for line in nt_entries}
    assert listed["/app/bin/hello"][:4] == ["f", "755", "0", "0"]
    assert listed["/app/config/private.txt"][:2] == ["f", "640"]
    assert listed["/app/lib/current_greeting.rb"] == ["l", "777", "0", "0", "greeting.rb"]
    assert listed["/app/config/hostname"][-1] == "/etc/hostname"
    assert listed["/app/config/dangling"][-1] == "../nowhere/at/all"
    assert listed["/app/lib/deep/er/nested.rb"][0] == "f"
    assert listed["/app/public/empty"][0] == "d"
    assert "/app/lib/grüße.txt" in listed
    assert f"/app/{LONG_NAME}" in listed
    assert listed["/app/lib/deep/NOTES.md"][0] == "f"
    for left_out in (
        "/app/CHANGELOG.md",
        "/app/README.md",
        "/app/coverage",
        "/app/.env",
        "/app/config/master.key",
        "/app/tmp/cache.bin",
    ):
        assert left_out not in listed

    # The settings and labels.
    base_manifest, base_config = registry_image(client, assembled["base"]["image"])
    bk_manifest, bk_config = registry_image(client, by_buildkit["image"])
    nt_manifest, nt_config = registry_image(client, native["image"])
    for name in CONFIG_FIELDS:
        assert nt_config["config"].get(name) == bk_config["config"].get(name), name
    assert nt_config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert nt_config["config"]["User"] == "app"

    def labels(config: Mapping[str, Any]) -> dict[str, str]:
        found = dict(config["config"].get("Labels") or {})
        return {k: v for k, v in found.items() if k not in TIMELY_LABELS}

    assert labels(nt_config) == labels(bk_config)
    assert labels(nt_config)["org.opencontainers.image.revision"] == commit
    assert labels(nt_config)["org.opencontainers.image.source"] == ORIGIN
    assert labels(nt_config)["org.imgbuild.key"] == native["key"]
    assert labels(nt_config)["org.imgbuild.process.web"] == "ruby app.rb"  # app.processes

    # The same history, step for step. ARG and EXPOSE lines are compared by instruction only:
    # their text depends on the BuildKit version (current BuildKit writes an ARG's effective
    # value and `EXPOSE [8080/tcp]`, as the native path does; the BuildKit in Docker 20.10 and
    # 26 writes the Dockerfile's default and `EXPOSE map[8080/tcp:{}]`).
    def steps(config: Mapping[str, Any]) -> list[tuple[str, bool]]:
        found = []
        for entry in config["history"]:
            text = str(entry.get("created_by", ""))
            word = text.partition(" ")[0]
            found.append(
                (word if word in ("ARG", "EXPOSE") else text, bool(entry.get("empty_layer")))
            )
        return found

    assert steps(nt_config) == steps(bk_config)
    added = steps(nt_config)[len(base_config["history"]) :]
    assert [step for step in added if not step[1]] == [("COPY . /app/ # buildkit", False)]
    assert nt_config["architecture"] == bk_config["architecture"]
    assert nt_config["os"] == bk_config["os"]
    # Both are the base's layers plus one.
    base_ids = base_config["rootfs"]["diff_ids"]
    for config in (nt_config, bk_config):
        assert config["rootfs"]["diff_ids"][:-1] == base_ids
        assert len(config["rootfs"]["diff_ids"]) == len(base_ids) + 1
    base_layers = [layer["digest"] for layer in base_manifest.body["layers"]]
    assert [layer["digest"] for layer in nt_manifest.body["layers"]][:-1] == base_layers
    assert len(nt_manifest.body["layers"]) == len(bk_manifest.body["layers"])

    # The same answer from each, run as it is.
    answers = [http_answer(image) for image in (by_buildkit["image"], native["image"])]
    assert "native add: 5" in answers[0]
    assert answers[1] == answers[0]


# -- 2. one commit, one digest ---------------------------------------------------------------


def test_two_checkouts_of_one_commit_push_one_digest(project: Project, tmp_path: Path) -> None:
    """Two clones of one commit (different directories, file mtimes set years apart), each
    with a cache dir of its own, push the same app manifest digest.

    A content tag already in the registry is never overwritten (the second run would find the
    image up to date and push nothing), so each checkout pushes to a repository of its own on
    the same base: the config file, and so the key, labels and layer, do not name it (the
    module docstring). The digests compared are the ones the registry stores, read back."""
    own_app_repository(project)
    odd_source(project.root)
    committed(project.root)
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(project.root), str(origin))
    commit = git(origin, "rev-parse", "HEAD").strip()

    digests = []
    for index, stamp in enumerate((1_000_000_000, 1_600_000_000)):
        checkout = tmp_path / f"checkout-{index}" / "hello"
        git(tmp_path, "clone", "-q", str(origin), str(checkout))
        for path in (checkout, *checkout.rglob("*")):
            if ".git" not in path.relative_to(checkout).parts:
                os.utime(path, (stamp, stamp), follow_symlinks=False)
        other = Project(
            root=checkout,
            cache_dir=tmp_path / f"cache-{index}",
            dev=project.dev,
            name=project.name,
        )
        layers, stderr = run_app(other, new_repo(project, f"r{index}"), "app", "--push")
        app = layers["app"]
        assert app["path"] == "native", stderr[-3000:]
        assert (app["built"], app["pushed"]) == (True, True)
        _, repo, tag = split_ref(app["image"])
        stored = RegistryClient(project.dev.registry).exists(repo, tag)
        assert stored == app["digest"]
        digests.append((app["key"], stored))
        assert git(checkout, "rev-parse", "HEAD").strip() == commit
    assert digests[0] == digests[1]

    # The layer holds the commit time, not the checkout's mtimes (which differ).
    client = RegistryClient(project.dev.registry)
    _, config = registry_image(client, app["image"])
    commit_time = int(git(origin, "log", "-1", "--format=%ct").strip())
    assert config["created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(commit_time))


# -- 3. BuildKit, and why ----------------------------------------------------------------


FALLBACK_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY . /app/
RUN echo "made by RUN" > /app/ran-at-build.txt
ARG APP_USER=app
USER ${APP_USER}
ARG APP_COMMAND="ruby app.rb"
ARG APP_PORT=8080
ENV APP_COMMAND=${APP_COMMAND} PORT=${APP_PORT}
EXPOSE ${APP_PORT}
CMD ["/bin/sh", "-c", "exec $APP_COMMAND"]
"""


def test_a_run_after_the_copy_falls_back_to_buildkit_with_the_line(
    project: Project, local_refs: list[str]
) -> None:
    """An app Dockerfile with a RUN after its context COPY is built by BuildKit, and the run
    says so with the Dockerfile, its line and the instruction; the image it pushes works."""
    own_app_repository(project)
    dockerfile = project.root / "docker" / "app.Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text(FALLBACK_DOCKERFILE)
    project.edit_config("app:\n", "app:\n  dockerfile: docker/app.Dockerfile\n")

    layers, stderr = run_app(project, new_repo(project, "run"), "app", "--push")
    app = layers["app"]
    assert app["path"] == "buildkit"
    reason = app["path_reason"]
    assert reason is not None
    assert reason.startswith(f"{dockerfile}: "), reason
    assert re.search(r"\bline 4\b.*\bRUN\b", reason), reason
    assert f"app: building with BuildKit: {reason}" in stderr
    assert "(no daemon)" not in stderr
    assert (app["built"], app["pushed"]) == (True, True)
    local_refs.append(app["image"])

    made = docker("run", "--rm", app["image"], "cat", "/app/ran-at-build.txt").stdout
    assert made == "made by RUN\n"
    assert "native add: 5" in http_answer(app["image"])


# -- 4. no daemon ----------------------------------------------------------------------------


def test_a_source_edit_is_pushed_without_a_daemon(
    project: Project, tmp_path: Path, local_refs: list[str]
) -> None:
    """Once the chain is in the registry, a source edit is pushed with DOCKER_HOST on a socket
    nothing listens on; the real daemon then runs what was pushed, edit included."""
    own_app_repository(project)
    repo = new_repo(project, "nod")
    first, _ = run_app(project, repo, "app", "--push")  # the chain is in the registry
    greeting = f"Bonjour-{uuid.uuid4().hex[:8]}"
    settings = project.root / "config" / "app.yml"
    settings.write_text(settings.read_text().replace("greeting: Hello", f"greeting: {greeting}"))

    dead = tmp_path / "no-daemon-here.sock"
    assert not dead.exists()
    layers, stderr = run_app(project, repo, "app", "--push", env={"DOCKER_HOST": f"unix://{dead}"})
    app = layers["app"]
    assert app["path"] == "native", stderr[-3000:]
    assert f"app: assembling {app['image']} in the registry" in stderr
    assert (app["built"], app["pushed"]) == (True, True)
    assert app["key"] != first["app"]["key"]
    assert [layers[n]["built"] for n in ("ruby", "base")] == [False, False]
    _, name, tag = split_ref(app["image"])
    assert RegistryClient(project.dev.registry).exists(name, tag) == app["digest"]

    local_refs.append(app["image"])
    assert http_answer(app["image"]).startswith(f"{greeting}, world! ")


# -- 5. the inputs beside the image ----------------------------------------------------------


def test_plan_on_a_fresh_machine_reads_the_inputs_artifact(
    project: Project, tmp_path: Path
) -> None:
    """The inputs travel beside the image as `<tag>.inputs`, not in its config: a plan with an
    empty cache dir (a fresh machine) still names the one file edited since the push."""
    own_app_repository(project)
    repo = new_repo(project, "inp")
    layers, _ = run_app(project, repo, "app", "--push")
    app = layers["app"]
    assert app["path"] == "native"
    client = RegistryClient(project.dev.registry)
    _, name, tag = split_ref(app["image"])
    assert "latest" in app["tags"]
    artifact = client.manifest(name, f"{tag}.inputs")
    assert artifact is not None, f"no {tag}.inputs beside {app['image']}"
    assert artifact.body["artifactType"] == "application/vnd.imgbuild.inputs.v1"
    assert artifact.body["subject"]["digest"] == app["digest"]

    # Its config carries no inputs label of its own (at most the one its base carries).
    _, config = registry_image(client, app["image"])
    _, base_config = registry_image(client, layers["base"]["image"])
    own = (config["config"].get("Labels") or {}).get(INPUTS_LABEL)
    inherited = (base_config["config"].get("Labels") or {}).get(INPUTS_LABEL)
    assert own == inherited

    greeting = project.root / "lib" / "greeting.rb"
    greeting.write_text(greeting.read_text() + f"\n# edited {uuid.uuid4().hex}\n")
    fresh = {"IMGBUILD_CACHE_DIR": str(tmp_path / "fresh-cache")}
    plan, _ = run_app(project, repo, "plan", env=fresh)
    assert [plan[n]["status"] for n in ("ruby", "base", "app")] == [
        "up-to-date",
        "up-to-date",
        "build",
    ]
    assert plan["app"]["reasons"] == ["lib/greeting.rb changed"]


# -- 6. a small config -----------------------------------------------------------------------


def test_the_app_config_is_at_most_2kb_over_the_base_config(project: Project) -> None:
    """The app's config is the base's plus a few settings, labels and history lines: no map of
    its files (what the inputs label cost every push)."""
    own_app_repository(project)
    odd_source(project.root)
    layers, _ = run_app(project, new_repo(project, "cfg"), "app", "--push")
    assert layers["app"]["path"] == "native"
    client = RegistryClient(project.dev.registry)
    app_manifest, _ = registry_image(client, layers["app"]["image"])
    base_manifest, _ = registry_image(client, layers["base"]["image"])
    app_bytes = int(app_manifest.body["config"]["size"])
    base_bytes = int(base_manifest.body["config"]["size"])
    _, name, _ = split_ref(layers["app"]["image"])
    assert len(client.blob(name, app_manifest.body["config"]["digest"])) == app_bytes
    assert app_bytes - base_bytes <= 2000, (app_bytes, base_bytes)
