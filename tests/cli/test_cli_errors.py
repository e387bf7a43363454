"""Acceptance 8: bad config, missing Dockerfile, daemon or registry down: one line, exit code."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.docker


def assert_one_line_error(result: object, code: int, *needles: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == code, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("imgbuild: error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_mistyped_key_exit_3_with_file_line(project: Project) -> None:
    project.edit_config("  bundle_without:", "  bundle_whitout:")
    lines = project.config.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "bundle_whitout" in text)
    result = project.run("plan")
    assert_one_line_error(
        result, 3, f"imgbuild.yaml:{line}:", "base.bundle_whitout", "'bundle_without'"
    )


def test_malformed_yaml_exit_3(project: Project) -> None:
    project.config.write_text(project.config.read_text() + "app: [\n")
    assert_one_line_error(project.run("app"), 3, "invalid YAML")


def test_registry_docker_would_read_as_docker_hub_exit_3(project: Project) -> None:
    result = project.run("--registry", "registry", "plan")
    assert_one_line_error(
        result, 3, "--registry: registry 'registry'", "docker.io/registry/<image>", "registry:5000"
    )
    result = project.run("plan", extra_env={"IMGBUILD_REGISTRY": "myreg/team"})
    assert_one_line_error(result, 3, "IMGBUILD_REGISTRY: registry 'myreg/team'", "docker.io/myreg")


def test_promote_to_a_registry_docker_would_read_as_docker_hub_exit_3(project: Project) -> None:
    result = project.run("promote", "app", "--from", project.dev.registry, "--to", "prod")
    assert_one_line_error(result, 3, "--to: registry 'prod'", "docker.io/prod/<image>")


@pytest.mark.parametrize(
    "args",
    [
        ("--registry", "127.0.0.1:50x0/team", "plan"),
        ("--registry", "127.0.0.1:70000/team", "plan"),
        ("promote", "app", "--from", "127.0.0.1:5000/team", "--to", "127.0.0.1:50x0/prod"),
    ],
    ids=["nonnumeric-port", "port-out-of-range", "promote-to"],
)
def test_registry_with_a_path_and_a_bad_port_exit_3_at_once(
    project: Project, args: tuple[str, ...]
) -> None:
    """A parse error is the user's to fix: not retried, not blamed on the network."""
    bad = next(a for a in args if "50x0" in a or "70000" in a)
    started = time.monotonic()
    result = project.run(*args)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, 3, f"'{bad}'")
    assert "retrying" not in result.stderr
    assert "unreachable" not in result.stderr
    assert elapsed < 1.5, f"{elapsed:.2f}s: the CLI starts in ~0.3 s; retries take ~1 s more"


def test_base_image_docker_refuses_exit_3(project: Project) -> None:
    result = project.run("plan", extra_env={"IMGBUILD_BASE_IMAGE": "Debian:12"})
    assert_one_line_error(
        result, 3, "IMGBUILD_BASE_IMAGE: base_image 'Debian:12'", "must be lowercase"
    )


def test_missing_dockerfile_exit_4(project: Project) -> None:
    project.edit_config("app:\n", "app:\n  dockerfile: docker/app.Dockerfile\n")
    assert_one_line_error(project.run("app"), 4, "app.dockerfile", "does not exist")


def test_missing_lockfile_exit_4(project: Project) -> None:
    (project.root / "Gemfile.lock").unlink()
    assert_one_line_error(project.run("plan"), 4, "Gemfile.lock is missing")


GZIP = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4  # a Gemfile.lock.gz saved under the name


def _conflicted(lock: bytes) -> bytes:
    ours, theirs = b"    tinydev (0.1.0)\n", b"    tinydev (0.1.1)\n"
    return lock.replace(ours, b"<<<<<<< HEAD\n" + ours + b"=======\n" + theirs + b">>>>>>> main\n")


@pytest.mark.parametrize(
    ("damage", "line", "words"),
    [
        pytest.param(_conflicted, 5, "merge conflict marker", id="merge conflict"),
        pytest.param(
            lambda lock: lock[: lock.index(b"DEPENDENCIES") + 5], 13, "cut short", id="cut"
        ),
        pytest.param(lambda _: GZIP, 1, "not UTF-8 text (byte 0x8b)", id="gzip bytes"),
        pytest.param(lambda _: b"", 1, "the file is empty", id="empty"),
    ],
)
def test_gemfile_lock_that_is_no_lockfile_exit_4_with_its_line(
    project: Project, damage: Callable[[bytes], bytes], line: int, words: str
) -> None:
    lock = project.root / "Gemfile.lock"
    lock.write_bytes(damage(lock.read_bytes()))
    assert_one_line_error(project.run("plan"), 4, f"{lock} line {line}: ", words, "bundle lock")


def test_dockerignore_excluding_gemfile_exit_4(project: Project) -> None:
    (project.root / ".dockerignore").write_text("Gemfile\n")
    assert_one_line_error(project.run("plan"), 4, ".dockerignore excludes Gemfile")


def test_dockerignore_pattern_buildkit_rejects_exit_4_with_file_line(project: Project) -> None:
    (project.root / ".dockerignore").write_text("# docs\n*.md\n\\p{Greek}*\n")
    result = project.run("plan")
    assert_one_line_error(result, 4, ".dockerignore:3: ignore pattern '\\p{Greek}*'")
    (project.root / ".dockerignore").write_text("[[:foo:]]*\n")
    assert_one_line_error(project.run("plan"), 4, ".dockerignore:1:", "[:foo:]")


def test_daemon_down_exit_5_fast(project: Project, tmp_path: object) -> None:
    started = time.monotonic()
    result = project.run("app", extra_env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert_one_line_error(result, 5, "no Docker daemon answers")
    assert time.monotonic() - started < 10


def test_registry_down_exit_8_fast(project: Project) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    result = project.run("--registry", f"127.0.0.1:{port}", "app", "--push")
    assert_one_line_error(result, 8, f"127.0.0.1:{port}", "unreachable")
    assert time.monotonic() - started < 10


def test_failing_build_exit_7_names_step(project: Project) -> None:
    dockerfile = project.root / "broken.Dockerfile"
    dockerfile.write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && exit 3\n")
    project.edit_config("app:\n", "app:\n  dockerfile: broken.Dockerfile\n")
    result = project.run("app")
    assert_one_line_error(result, 7, "building the app image", "exit code: 3")
