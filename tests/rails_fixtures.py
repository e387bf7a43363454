"""What the tests that build and boot examples/rails share: copying the example with its gems,
booting an image with Puma, and asking it for a page the way a TLS-terminating load balancer does.
"""

from __future__ import annotations

import http.client
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_chain_integration import docker, free_port

RAILS_EXAMPLE = REPO / "examples" / "rails"
HTTPS = {"X-Forwarded-Proto": "https"}  # what a TLS-terminating load balancer sends
STYLESHEET = re.compile(r'<link rel="stylesheet" href="(/assets/application-[0-9a-f]+\.css)"')


def copy_example(root: Path) -> Path:
    """examples/rails at root, with its gems (vendor/cache, which `make services` fills) and
    without its logs."""
    if not any((RAILS_EXAMPLE / "vendor" / "cache").glob("railties-*.gem")):
        pytest.fail("examples/rails/vendor/cache has no gems; run `make services`")
    shutil.copytree(RAILS_EXAMPLE, root, ignore=shutil.ignore_patterns("cache", "*.log"))
    shutil.copytree(RAILS_EXAMPLE / "vendor" / "cache", root / "vendor" / "cache")
    return root


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """One request, redirects not followed: (status, content type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def wait_until_up(port: int, container: str, deadline_s: float = 90.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            get(port, "/up")
            return
        except OSError:
            if time.monotonic() > end:
                logs = docker("logs", container, check=False)
                tail = (logs.stdout + logs.stderr)[-3000:]
                pytest.fail(f"Puma did not answer in {deadline_s:.0f} s:\n{tail}")
            time.sleep(0.25)  # Puma is booting Rails


@contextmanager
def booted(image: str, secret: str = "rails-test-only") -> Iterator[int]:
    """The image's command running on the host's network on a free port, answering /up; yields
    the port, removes the container after."""
    port = free_port()
    container = docker(
        "run", "-d", "--network", "host", "-e", f"PORT={port}",
        "-e", f"SECRET_KEY_BASE={secret}", image,
    ).stdout.strip()  # fmt: skip
    try:
        wait_until_up(port, container)
        yield port
    finally:
        docker("rm", "-f", container, check=False)


def assert_serves_the_example(port: int) -> None:
    """/up in plain HTTP, the generated page and its precompiled stylesheet behind force_ssl."""
    # Rails' health check, in plain HTTP (production.rb exempts it from force_ssl).
    assert get(port, "/up")[0] == 200
    status, _, page = get(port, "/", HTTPS)
    assert status == 200, page[-2000:]
    assert "<h1>Pages#home</h1>" in page
    link = STYLESHEET.search(page)
    assert link, page
    status, content_type, css = get(port, link.group(1), HTTPS)
    assert status == 200
    assert content_type.startswith("text/css")
    assert "#b3261e" in css  # the example's own rule, precompiled
