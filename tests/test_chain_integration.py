"""The chain end to end on the real daemon, BuildKit and registry (issue 2's acceptance list).

The first test may compile Ruby (minutes on a cold machine); later tests and later runs reuse the
images in the registry, which is exactly what the chain is for.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import Project, layers_by_name

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.engines]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=300
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, deadline_s: float = 20.0) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)  # polling a server that is starting, bounded by the deadline


def test_build_push_then_noop(project: Project) -> None:
    first = layers_by_name(project.run_json("app", "--push"))
    assert list(first) == ["ruby", "base", "app"]
    for layer in first.values():
        assert layer["digest"]
        assert layer["digest"].startswith("sha256:")
        assert layer["image"].startswith(f"{project.dev.registry}/{project.name}-{layer['name']}:")

    second = layers_by_name(project.run_json("app", "--push"))
    assert [layer["built"] for layer in second.values()] == [False, False, False]
    assert [layer["pushed"] for layer in second.values()] == [False, False, False]
    assert {n: layer["digest"] for n, layer in second.items()} == {
        n: layer["digest"] for n, layer in first.items()
    }


def test_app_image_runs_as_non_root_without_compiler_or_secrets(project: Project) -> None:
    image = layers_by_name(project.run_json("app"))["app"]["image"]
    port = free_port()
    container = docker("run", "-d", "--rm", "--network", "host", "-e", f"PORT={port}", image).stdout
    try:
        body = http_get(f"http://127.0.0.1:{port}/")
        assert "native add: 5" in body
    finally:
        docker("stop", "-t", "2", container.strip(), check=False)
    checks = (
        'test "$(id -u)" != 0 && echo nonroot; '
        "command -v gcc cc make || echo nocompiler; "
        "ls -a /app; "
        'ruby -e \'require "bundler/setup"; require "tinynative"; p TinyNative.add(2, 3)\''
    )
    out = docker("run", "--rm", "--entrypoint", "sh", image, "-c", checks).stdout
    assert "nonroot" in out
    assert "nocompiler" in out
    listing = out.split()
    for forbidden in (".git", ".env", "master.key"):
        assert forbidden not in listing
    assert out.strip().endswith("5")
    assert (
        docker("run", "--rm", image, "test", "-e", "/app/config/master.key", check=False).returncode
        == 1
    )


def test_source_change_rebuilds_only_app_and_plan_names_file(project: Project) -> None:
    project.run_json("app", "--push")
    greeting = project.root / "lib" / "greeting.rb"
    greeting.write_text(greeting.read_text() + f"\n# touched {time.time_ns()}\n")

    plan = layers_by_name(project.run_json("plan"))
    assert [plan[n]["status"] for n in ("ruby", "base", "app")] == [
        "up-to-date",
        "up-to-date",
        "build",
    ]
    assert "lib/greeting.rb changed" in plan["app"]["reasons"]

    result = layers_by_name(project.run_json("app", "--push"))
    assert [result[n]["built"] for n in ("ruby", "base", "app")] == [False, False, True]
    assert result["app"]["pushed"] is True


def test_os_package_change_rebuilds_base_and_app_not_ruby(project: Project) -> None:
    nonce = time.time_ns()  # a key this machine has never built, run after run
    project.edit_config("base:\n", f"base:\n  build_args: {{TEST_NONCE: '{nonce}'}}\n")
    project.run_json("app")
    project.edit_config("packages: [curl]", "packages: [curl, file]")
    plan = layers_by_name(project.run_json("plan"))
    assert [plan[n]["status"] for n in ("ruby", "base", "app")] == ["up-to-date", "build", "build"]
    assert "OS packages curl → curl file" in plan["base"]["reasons"]
    assert any(reason.startswith("base image changes") for reason in plan["app"]["reasons"])

    result = layers_by_name(project.run_json("app"))
    assert [result[n]["built"] for n in ("ruby", "base", "app")] == [False, True, True]


def test_lockfile_change_marks_base_stale(project: Project) -> None:
    project.run_json("plan")
    lock = project.root / "Gemfile.lock"
    lock.write_text(lock.read_text() + "\n")
    project.run_json("plan")  # records nothing new: the base image for this key is missing
    plan = layers_by_name(project.run_json("plan"))
    assert plan["ruby"]["status"] == "up-to-date"
    assert plan["base"]["status"] == "build"


def test_ruby_change_marks_all_three_stale(project: Project) -> None:
    project.run_json("app")
    project.edit_config(
        'version: "3.3.8"',
        'version: "3.3.8"\n  configure_opts: [--disable-install-doc, --enable-debug-env]',
    )
    plan = layers_by_name(project.run_json("plan"))
    assert [plan[n]["status"] for n in ("ruby", "base", "app")] == ["build", "build", "build"]
    assert (
        "configure options --disable-install-doc → --disable-install-doc --enable-debug-env"
        in plan["ruby"]["reasons"]
    )
