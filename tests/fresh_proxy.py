"""An HTTP forward proxy for the suite's fresh daemons (tests/engines.py): their build containers
have no route out (--iptables=false, no NAT), and RUN steps that apt-get need Debian's archive.
The proxy listens on the daemon's bridge address and a DOCKER_CONFIG names it in `proxies`:
buildx passes it as the predefined proxy build args, which are in no cache key."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType

from tests.engines import ensure_bridge

BENCH_FORWARD = Path(__file__).resolve().parent.parent / "bench" / "forward.py"


def _bench_forward() -> ModuleType:
    """bench/forward.py, whose HTTP proxy P4-FRESH's fresh daemons use (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location("bench_forward", BENCH_FORWARD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class HttpProxy:
    """A plain-http forward proxy on `address`. One request per connection (bench/forward.py's
    relay; apt asks again)."""

    def __init__(self, address: str) -> None:
        self.server = socket.create_server((address, 0))
        self.url = f"http://{address}:{self.server.getsockname()[1]}"
        self._relay = _bench_forward()._proxy_one
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with suppress(OSError):
            while True:
                client, _ = self.server.accept()
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def close(self) -> None:
        self.server.close()


@contextmanager
def proxied_docker_config(directory: Path, bridge: str) -> Iterator[Path]:
    """`directory` made a DOCKER_CONFIG naming an HTTP proxy on `bridge`'s address (the bridge
    set up first), for a fresh daemon on that bridge; the proxy closes on exit."""
    proxy = HttpProxy(ensure_bridge(bridge))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        proxies = {"httpProxy": proxy.url, "noProxy": "localhost,127.0.0.1"}
        (directory / "config.json").write_text(json.dumps({"proxies": {"default": proxies}}))
        yield directory
    finally:
        proxy.close()
