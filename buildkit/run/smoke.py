"""The smoke check: start the app image as production would and wait until it answers.

The app container runs the image's own command with the declared environment; its port is
published on 127.0.0.1 only. Until the app listens, the daemon's port proxy accepts and then drops
the connection: that (and a refused connection) means "not yet". The first HTTP answer is final:
its status and body are checked, the logs are captured, the container is stopped.
"""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from buildkit import fsutil, log, proc
from buildkit.config.verify import Smoke
from buildkit.engine import containers, docker_api
from buildkit.errors import ImgbuildError, NotReadyError, SmokeCheckError
from buildkit.run.session import Session, last_lines, poll

_BODY_SHOWN = 200


@dataclass(frozen=True, kw_only=True)
class SmokeResult:
    image: str
    target: str  # "GET /up" or "TCP 8080"
    status: int | None
    seconds: float
    log_file: Path

    def as_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "check": self.target,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "log": str(self.log_file),
        }


@dataclass
class _Answer:
    status: int | None = None
    body: str = ""


def check(
    session: Session,
    image: str,
    env: Mapping[str, str],
    port: int,
    smoke: Smoke,
    out_dir: Path,
) -> SmokeResult:
    target = f"GET {smoke.path}" if smoke.path else f"TCP {port}"
    remote = docker_api.remote_engine()
    if remote is not None:
        raise SmokeCheckError(
            f"verify.smoke: the engine at {remote} publishes the app's port on that machine's "
            "127.0.0.1, which this one cannot reach; run the smoke check on an engine on this "
            "machine, or `imgbuild verify --tests-only`"
        )
    log.info(f"verify: smoke check of {image}: {target} on its port {port}")
    timer = log.Timer()
    container = session.start_app(image, env, port)
    answer = _Answer()
    log_file = out_dir / "app.log"
    try:
        host_port = containers.host_port(container, port)

        def probe() -> bool:
            return _probe(host_port, smoke.path, answer)

        poll(probe, container, smoke.timeout, what="smoke", on_timeout=_timeout(image, target))
        seconds = timer.seconds
    finally:
        fsutil.atomic_write_text(log_file, proc.redact(containers.logs(container)))
        tail = last_lines(container)
        containers.remove_container(container)
    _judge(smoke, answer, image, target, tail)
    log.info(f"verify: smoke check passed: {target} -> {answer.status or 'open'} in {seconds:.1f}s")
    return SmokeResult(
        image=image, target=target, status=answer.status, seconds=seconds, log_file=log_file
    )


def _probe(host_port: int, path: str | None, answer: _Answer) -> bool:
    try:
        if path is None:
            return _tcp_answers(host_port)
        conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=5)
        try:
            conn.request(
                "GET", path, headers={"Host": "localhost", "User-Agent": "imgbuild-verify"}
            )
            response = conn.getresponse()
            answer.status = response.status
            answer.body = response.read(65536).decode(errors="replace")
            return True
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def _tcp_answers(host_port: int) -> bool:
    """The port proxy accepts at once; the app is there when the connection is not dropped."""
    with socket.create_connection(("127.0.0.1", host_port), timeout=2) as sock:
        sock.settimeout(0.5)
        try:
            return sock.recv(1) != b""  # b"": the proxy dropped it, nothing listens yet
        except TimeoutError:
            return True  # still open: something listens behind the proxy


def _timeout(image: str, target: str) -> Callable[[str, str], ImgbuildError]:
    def error(reason: str, tail: str) -> ImgbuildError:
        if reason.startswith("exited"):  # the app crashed: not a matter of waiting longer
            return SmokeCheckError(
                f"verify.smoke: {image} {reason} ({target}); fix the app's start (its command, "
                f"environment, secrets); last log lines: {tail or '(none)'}"
            )
        return NotReadyError(
            f"verify.smoke: {image} {reason} ({target}); raise verify.smoke.timeout or fix the "
            f"app's start; last log lines: {tail or '(none)'}"
        )

    return error


def _judge(smoke: Smoke, answer: _Answer, image: str, target: str, tail: str) -> None:
    if smoke.path is None:
        return
    shown = " ".join(answer.body.split())[:_BODY_SHOWN]
    if answer.status != smoke.status:
        raise SmokeCheckError(
            f"verify.smoke: {image} answered {target} with {answer.status}, expected "
            f"{smoke.status}; body: {shown or '(empty)'}; last log lines: {tail or '(none)'}"
        )
    if smoke.body is not None and not re.search(smoke.body, answer.body):
        raise SmokeCheckError(
            f"verify.smoke: {image} answered {target} with {answer.status} but the body does "
            f"not match verify.smoke.body {smoke.body!r}; body: {shown or '(empty)'}"
        )
