"""One verify run on the daemon: a private network, the declared services, the app's containers.

Names carry the run id (`imgbuild-verify-<run>-<service>`) and services are reached by their
alias on the run's own network, so concurrent runs on one daemon never clash; only the app's
port is published, on 127.0.0.1 at a port the daemon picks. `close()` removes everything the run
created, with SIGINT/SIGTERM held back until it is done (a second Ctrl-C cannot leave half).
"""

from __future__ import annotations

import itertools
import secrets
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from buildkit import log, proc
from buildkit.config.verify import Service
from buildkit.engine import containers, docker_api
from buildkit.errors import ImgbuildError, NotReadyError, ServiceImageError

#: Pause between readiness probes: short at first, then at most this (seconds).
_MAX_PAUSE = 1.0


def new_run_id(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:30]
    return f"{safe}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Finished:
    exit_code: int | None  # None: killed at its timeout
    seconds: float
    output: str


class Session:
    """Use as a context manager: everything created inside is removed on the way out."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.network = f"imgbuild-verify-{run_id}"
        self.labels = containers.labels_for(run_id)
        self._open = False

    def __enter__(self) -> Session:
        log.info(f"verify: run {self.run_id} (containers and network {self.network}*)")
        containers.reap_orphans()
        containers.create_network(self.network, self.labels)
        self._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._open:
            return
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            containers.remove_run(self.run_id)
            # A request the signal cut short may still be creating a container in the daemon:
            # a second look catches it (the next run's reap_orphans catches anything later).
            if any(containers.owned(self.run_id)):
                containers.remove_run(self.run_id)
            self._open = False
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def name(self, role: str) -> str:
        return f"imgbuild-verify-{self.run_id}-{role}"

    # --- services ---------------------------------------------------------------------------

    def start_service(self, service: Service) -> str:
        _ensure_image(service)
        container = containers.create_container(
            service.image,
            name=self.name(service.name),
            network=self.network,
            alias=service.name,
            labels=self.labels,
            env=service.env,
            command=service.command,
        )
        containers.start(container)
        return container

    def wait_ready(self, service: Service, container: str, probe_image: str) -> float:
        """Seconds until the service's readiness check passed; NotReadyError at its timeout."""
        timer = log.Timer()
        ready = service.ready
        if ready.command is not None:
            command = ready.command

            def check() -> bool:
                return containers.exec_in(container, command).exit_code == 0

        else:
            probe = self._tcp_probe(service, probe_image)

            def check() -> bool:
                return probe()

        what = f"verify.services.{service.name}"
        poll(check, container, ready.timeout, what=what, on_timeout=_service_timeout(service))
        return timer.seconds

    def _tcp_probe(self, service: Service, image: str) -> Callable[[], bool]:
        """A check that connects to the service's port from the run's network (a throwaway
        container of the app's image: it has Ruby; the host never talks to a bridge address)."""
        script = (
            "require 'socket'; begin; TCPSocket.new(ARGV[0], Integer(ARGV[1])).close; "
            "rescue SystemCallError, SocketError; exit 1; end"
        )
        count = itertools.count()

        def probe() -> bool:
            container = containers.create_container(
                image,
                name=self.name(f"probe-{service.name}-{next(count)}"),
                network=self.network,
                alias=f"probe-{service.name}",
                labels=self.labels,
                env={},
                command=["ruby", "-e", script, service.name, str(service.port)],
            )
            try:
                containers.start(container)
                return containers.wait(container, timeout=30) == 0
            finally:
                containers.remove_container(container)

        return probe

    # --- the app's containers ---------------------------------------------------------------

    def start_app(self, image: str, env: Mapping[str, str], port: int) -> str:
        container = containers.create_container(
            image,
            name=self.name("app"),
            network=self.network,
            alias="app",
            labels=self.labels,
            env=env,
            publish=port,
        )
        containers.start(container)
        return container

    def run_to_end(
        self,
        image: str,
        command: Sequence[str],
        env: Mapping[str, str],
        timeout: float,
        *,
        role: str = "tests",
        user: str = "",
        echo: Callable[[str], None] = log.plain,
    ) -> tuple[str, Finished]:
        """Run a command in a new container of image until it exits (or its timeout), echoing
        its output as it comes. The container is kept (stopped) for copying files out."""
        container = containers.create_container(
            image,
            name=self.name(role),
            network=self.network,
            alias=role,
            labels=self.labels,
            env=env,
            command=command,
            user=user,
        )
        lines: list[str] = []
        reader = threading.Thread(target=_echo, args=(container, lines, echo), daemon=True)
        timer = log.Timer()
        containers.start(container)
        reader.start()
        code = containers.wait(container, timeout)
        seconds = timer.seconds
        if code is None:
            containers.remove_container(container)
        reader.join(timeout=5)
        return container, Finished(exit_code=code, seconds=seconds, output="".join(lines))


def _echo(container: str, lines: list[str], echo: Callable[[str], None]) -> None:
    pending = b""
    try:
        for chunk in containers.follow_logs(container):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                text = proc.redact(raw.decode(errors="replace"))
                lines.append(text + "\n")
                echo(text)
    except Exception:  # the container went away under the stream: the output so far is kept
        return
    if pending:
        text = proc.redact(pending.decode(errors="replace"))
        lines.append(text)
        echo(text)


def _ensure_image(service: Service) -> None:
    if containers.image_present(service.image):
        return
    log.info(f"verify: pulling {service.image} for service {service.name}")
    try:
        docker_api.pull(service.image)
    except ImgbuildError as exc:
        raise ServiceImageError(
            f"verify.services.{service.name}.image: {service.image} is not in the daemon and "
            f"could not be pulled ({exc.message.split(';')[0]}); fix the name or push the image"
        ) from None
    if not containers.image_present(service.image):
        raise ServiceImageError(
            f"verify.services.{service.name}.image: {service.image} is not in the daemon after "
            "a pull; fix the name"
        )


def _service_timeout(service: Service) -> Callable[[str, str], ImgbuildError]:
    def error(reason: str, tail: str) -> ImgbuildError:
        check = (
            " ".join(service.ready.command) if service.ready.command else f"TCP port {service.port}"
        )
        return NotReadyError(
            f"verify.services.{service.name}: {reason} (readiness check: {check}); "
            f"fix verify.services.{service.name}.ready or the service's env; last log lines: "
            f"{tail or '(none)'}"
        )

    return error


def poll(
    check: Callable[[], bool],
    container: str,
    timeout: float,
    *,
    what: str,
    on_timeout: Callable[[str, str], ImgbuildError],
) -> None:
    """Run check until it passes; the container exiting or the timeout is on_timeout's error."""
    deadline = time.monotonic() + timeout
    pause = 0.1
    while True:
        if check():
            return
        current = containers.state(container)
        if not current.get("Running"):
            reason = f"exited with status {current.get('ExitCode')} before it was ready"
            raise on_timeout(reason, last_lines(container))
        if time.monotonic() >= deadline:
            raise on_timeout(f"not ready after {timeout:.0f}s", last_lines(container))
        log.debug(f"{what}: not ready yet")
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, _MAX_PAUSE)


def last_lines(container: str, count: int = 5) -> str:
    text = proc.redact(containers.logs(container, tail=count)).strip()
    return " | ".join(line.strip() for line in text.splitlines()[-count:])[:600]
