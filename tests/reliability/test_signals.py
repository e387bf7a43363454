"""Issue 7, interruption: SIGINT or SIGTERM while BuildKit builds or while the daemon pushes ends
imgbuild promptly with 130/143, leaves no child process behind, no torn or temp file in the cache
and no half-pushed chain, and the next run succeeds, building only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Project, layers_by_name
from tests.registry_fixtures import (  # noqa: F401 - fixtures, requested by name
    ScratchRegistry,
    proxied_registry_fixture,
    scratch_registry_fixture,
)
from tests.registry_proxy import RegistryProxy

from .conftest import OwnImages
from .support import (
    cache_problems,
    error_lines,
    registry_problems,
    registry_tags,
    session_processes,
    stopped_on_exit,
    wait_for,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SLEEP_STEP = "RUN sleep 15"
#: From the signal to the exit: imgbuild stops its child and exits, it does not wait for the step.
PROMPT_SECONDS = 5.0


def _slow_app(project: Project) -> None:
    """An app Dockerfile with a 15 s step after the source copy, so any source change makes the
    build take that long."""
    dockerfile = (REPO / "images" / "app" / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY . /app/\n" in dockerfile
    slow = dockerfile.replace("COPY . /app/\n", f"COPY . /app/\n{SLEEP_STEP}\n", 1)
    (project.root / "slow.Dockerfile").write_text(slow, encoding="utf-8")
    project.edit_config("app:\n", "app:\n  dockerfile: slow.Dockerfile\n")


#: A shell's background job (how CI or a tool may run pytest) inherits SIGINT ignored, and then
#: Python never raises KeyboardInterrupt. imgbuild is started the way a terminal starts it: SIGINT
#: back to its default disposition (kept across exec), then exec'd.
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'buildkit', *sys.argv[1:]])"
)


def _start(project: Project, args: list[str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", _DEFAULT_SIGINT, "-c", str(project.config), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=project.env(),
            text=True,
            start_new_session=True,  # its own session: every child it starts can be found
        )


def _interrupt(process: subprocess.Popen[str], signum: int, *, group: bool) -> float:
    """Send signum (to the whole process group, like a terminal's Ctrl-C, when `group`); return
    the seconds until the process exited."""
    sent = time.monotonic()
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"imgbuild still runs 30 s after signal {signum}")
    return time.monotonic() - sent


def _assert_interrupted(
    process: subprocess.Popen[str], signum: int, seconds: float, log: Path, cache_dir: Path
) -> None:
    stderr = log.read_text(errors="replace")
    detail = f"exit {process.returncode} after {seconds:.1f}s\n{stderr[-3000:]}"
    assert process.returncode == 128 + signum, detail
    assert seconds < PROMPT_SECONDS, detail
    assert "Traceback" not in stderr, detail
    errors = error_lines(stderr)
    assert len(errors) == 1, detail
    assert "interrupted" in errors[0], detail
    leftovers = session_processes(process.pid)
    assert leftovers == [], f"still running after imgbuild exited: {leftovers}"
    assert cache_problems(cache_dir) == []


def _next_run(project: Project, *args: str) -> dict[str, dict[str, Any]]:
    result = project.run(*args, "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return layers_by_name(json.loads(result.stdout))


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "Ctrl-C to the process group"],
)
def test_signal_during_a_build(project: Project, tmp_path: Path, signum: int, group: bool) -> None:
    _next_run(project, "app")  # whatever the chain lacks on this machine, built beforehand
    _slow_app(project)
    (project.root / "lib" / "interrupted.rb").write_text(f"# {time.time_ns()}\n")
    log = tmp_path / "stderr.log"
    with stopped_on_exit(_start(project, ["app"], log)) as process:
        wait_for(
            lambda: SLEEP_STEP in log.read_text(errors="replace") or process.poll() is not None,
            120,
            f"BuildKit to start '{SLEEP_STEP}'",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        seconds = _interrupt(process, signum, group=group)
    _assert_interrupted(process, signum, seconds, log, project.cache_dir)

    after = _next_run(project, "app")
    assert [after[n]["built"] for n in ("ruby", "base", "app")] == [False, False, True]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_push(
    project: Project,
    proxied_registry: RegistryProxy,
    scratch_registry: ScratchRegistry,
    own_images: OwnImages,
    tmp_path: Path,
    signum: int,
) -> None:
    registry = own_images.under(proxied_registry.address)
    (project.root / "lib" / "interrupted.rb").write_text(f"# {time.time_ns()}\n")
    # Every finished blob upload loses its answer: the daemon waits 5 s, 10 s, ... and uploads
    # again, so the push is still running when the signal comes.
    proxied_registry.inject_faults(
        1.0, ("500",), methods=["PUT"], path_regex=r"/blobs/uploads/", when="after", max_faults=40
    )
    log = tmp_path / "stderr.log"
    with stopped_on_exit(
        _start(project, ["--registry", registry, "app", "--push"], log)
    ) as process:
        wait_for(
            lambda: proxied_registry.stats.faults_injected > 0 or process.poll() is not None,
            240,
            "the push to meet its first fault",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        assert "pushing" in log.read_text()
        seconds = _interrupt(process, signum, group=False)
    _assert_interrupted(process, signum, seconds, log, project.cache_dir)
    upstream = scratch_registry.address
    moving = [
        f"{repo}:{tag}"
        for repo, tags in registry_tags(upstream).items()
        for tag in tags
        if tag == "latest"
    ]
    assert moving == [], "a moving tag was written before the chain was in"
    assert registry_problems(upstream) == []

    proxied_registry.clear_faults()
    after = _next_run(project, "--registry", registry, "app", "--push")
    # Nothing slow is built again. The app may be: when its base is pushed only by this run, it
    # is neither assembled in the registry (the base is not there yet when that is decided) nor
    # looked up in the daemon (plan leaves the daemon out for an app the push may assemble), so
    # BuildKit builds it again, from its cache.
    assert [after[n]["built"] for n in ("ruby", "base")] == [False, False]
    assert all(after[n]["digest"] for n in ("ruby", "base", "app"))
    assert registry_problems(upstream) == []
