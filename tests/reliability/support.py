"""Checks shared by the reliability tests: one-line errors, intact cache files, a consistent
registry, leftover child processes, bounded polling."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.registry_fixtures import MANIFEST_ACCEPT
from tests.registry_proxy import FaultKind, FaultWhen, LogEntry, RegistryProxy

ERROR_PREFIX = "imgbuild: error:"
T = TypeVar("T")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> str:
    """Exit `code`, no traceback, exactly one `imgbuild: error:` line containing every needle."""
    output = f"exit {result.returncode}\n--- stderr\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr + result.stdout, output
    assert result.returncode == code, output
    errors = error_lines(result.stderr)
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output
    return errors[0]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], seconds: float, what: str, interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(interval)  # polling, bounded by the deadline


# -- files ---------------------------------------------------------------------------------------


def tree_snapshot(root: Path) -> dict[str, str]:
    """relpath -> sha256 of every file under root (symlinks by target), to spot new or changed
    files."""
    result: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            result[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            result[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            result[rel] = "dir"
    return result


def snapshot_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = [f"new {p}" for p in sorted(after.keys() - before.keys())]
    changes += [f"removed {p}" for p in sorted(before.keys() - after.keys())]
    changes += [
        f"changed {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]
    ]
    return changes


def temp_files(root: Path) -> list[str]:
    """Leftovers of interrupted atomic writes (fsutil writes `.NAME.XXXX.tmp`)."""
    if not root.exists():
        return []
    return sorted(str(p) for p in root.rglob("*") if p.name.endswith(".tmp"))


def cache_problems(cache_dir: Path) -> list[str]:
    """Every JSON file under the cache parses, every JSONL line parses, no temp files remain."""
    problems = [f"leftover temp file {p}" for p in temp_files(cache_dir)]
    if not cache_dir.exists():
        return problems
    for path in sorted(cache_dir.rglob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    for path in sorted(cache_dir.rglob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError as exc:
                problems.append(f"{path}:{number}: torn line ({exc})")
                continue
            if not isinstance(record, dict):
                problems.append(f"{path}:{number}: not a JSON object")
    return problems


def history_records(cache_dir: Path) -> list[dict[str, Any]]:
    """Every record of every history file under the cache dir (all lines must parse)."""
    records = []
    for path in sorted(cache_dir.rglob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return records


# -- registry ------------------------------------------------------------------------------------


def _get(url: str, *, method: str = "GET", accept: str | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, method=method)
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status), response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers, exc.read()


def registry_tags(address: str) -> dict[str, dict[str, str]]:
    """repo -> tag -> manifest digest, for every tag in the registry (read directly)."""
    status, _, body = _get(f"http://{address}/v2/_catalog?n=1000")
    assert status == 200, f"catalog of {address}: HTTP {status}"
    result: dict[str, dict[str, str]] = {}
    for repo in json.loads(body).get("repositories") or []:
        status, _, body = _get(f"http://{address}/v2/{repo}/tags/list")
        tags = (json.loads(body).get("tags") or []) if status == 200 else []
        result[repo] = {}
        for tag in tags:
            status, headers, _ = _get(
                f"http://{address}/v2/{repo}/manifests/{tag}", method="HEAD", accept=MANIFEST_ACCEPT
            )
            if status == 200:
                result[repo][tag] = str(headers.get("Docker-Content-Digest"))
    return result


def manifest_problems(address: str, repo: str, reference: str, depth: int = 0) -> list[str]:
    """What is wrong with repo@reference: an unreadable manifest, a body that does not match its
    digest, or a config/layer blob the registry does not have (or has at another size)."""
    where = f"{address}/{repo}@{reference}"
    status, headers, body = _get(
        f"http://{address}/v2/{repo}/manifests/{reference}", accept=MANIFEST_ACCEPT
    )
    if status != 200:
        return [f"{where}: manifest GET answered HTTP {status}"]
    digest = str(headers.get("Docker-Content-Digest") or "")
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    problems = [] if digest == actual else [f"{where}: digest header {digest} != body {actual}"]
    manifest = json.loads(body)
    if "manifests" in manifest and depth < 2:
        for child in manifest["manifests"]:
            problems += manifest_problems(address, repo, child["digest"], depth + 1)
        return problems
    blobs = [manifest["config"], *manifest.get("layers", [])]
    for blob in blobs:
        status, headers, _ = _get(
            f"http://{address}/v2/{repo}/blobs/{blob['digest']}", method="HEAD"
        )
        if status != 200:
            problems.append(f"{where}: blob {blob['digest']} answers HTTP {status}")
        elif int(headers.get("Content-Length") or -1) != int(blob["size"]):
            problems.append(
                f"{where}: blob {blob['digest']} is {headers.get('Content-Length')} bytes, "
                f"the manifest says {blob['size']}"
            )
    return problems


def blob_status(address: str, repo: str, digest: str) -> int:
    """The HTTP status of a HEAD of repo's blob `digest` (200: the repository has it)."""
    return _get(f"http://{address}/v2/{repo}/blobs/{digest}", method="HEAD")[0]


def registry_problems(address: str) -> list[str]:
    """Walk the whole registry: every tag's manifest and every blob it references."""
    problems = []
    for repo, tags in registry_tags(address).items():
        for tag in tags:
            problems += [f"tag {tag}: {p}" for p in manifest_problems(address, repo, tag)]
    return problems


def upload_order_problems(log: tuple[LogEntry, ...], repo: str, tag: str) -> list[str]:
    """What in a proxy's log shows repo:tag's manifest PUT before its blobs: every PUT of the
    manifest must come after at least two committed blob uploads (201) into repo (the new
    layer and the config of an image whose blobs the registry did not have before)."""
    blob_put = re.compile(rf"^/v2/{re.escape(repo)}/blobs/uploads/[^/]+$")
    manifest = f"/v2/{repo}/manifests/{tag}"
    committed = 0
    problems = []
    for entry in log:
        if entry.method == "PUT" and blob_put.match(entry.path) and entry.status == 201:
            committed += 1
        elif entry.method == "PUT" and entry.path == manifest and committed < 2:
            problems.append(f"PUT {manifest} after {committed} committed blob upload(s)")
    if not any(e.method == "PUT" and e.path == manifest for e in log):
        problems.append(f"no PUT {manifest} in the proxy's log")
    return problems


class HoldingProxy(RegistryProxy):
    """A `RegistryProxy` that can also

    * hold one request mid-body (`hold`): once `after_bytes` of the first matching request's
      body went upstream, its handler stops forwarding (`held` is set) until `release()`; the
      client is left blocked in its upload, for as long as the test needs to kill it;
    * send its requests to another upstream registry (`switch_upstream`): one registry address
      (the same image names, so the same digests) in front of two registries.

    Built on the proxy's two per-request hooks: `_draw_fault(..., "before")`, the first call of
    every request (its handler thread remembers the request), and `_add(bytes_forwarded=...)`,
    called after every body piece sent upstream."""

    HOLD_SECONDS = 300.0  # a held handler gives up waiting: a failed test never hangs on it

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._current = threading.local()
        self._hold: tuple[str, re.Pattern[str], int] | None = None
        self.held = threading.Event()
        self._released = threading.Event()

    def hold(self, method: str, path_regex: str, *, after_bytes: int) -> None:
        """Hold the next `method` request whose path matches once `after_bytes` are forwarded."""
        with self._lock:
            self._hold = (method.upper(), re.compile(path_regex), after_bytes)
        self.held.clear()
        self._released.clear()

    def release(self) -> None:
        with self._lock:
            self._hold = None
        self._released.set()

    def switch_upstream(self, address: str) -> None:
        """Forward every request from now on to the registry at `address` (127.0.0.1:PORT)."""
        host, port = address.rsplit(":", 1)
        with self._lock:
            self.upstream_host, self.upstream_port = host, int(port)
            self._upstream_names = {address, f"127.0.0.1:{port}", f"localhost:{port}"}

    def stop(self) -> None:
        self.release()
        super().stop()

    def _draw_fault(self, method: str, path: str, stage: FaultWhen) -> FaultKind | None:
        if stage == "before":
            self._current.request = (method, path)
            self._current.forwarded = 0
        return super()._draw_fault(method, path, stage)

    def _add(self, *, bytes_forwarded: int = 0, **counts: int) -> None:
        super()._add(bytes_forwarded=bytes_forwarded, **counts)
        if not bytes_forwarded:
            return
        self._current.forwarded = getattr(self._current, "forwarded", 0) + bytes_forwarded
        method, path = getattr(self._current, "request", ("", ""))
        with self._lock:
            plan = self._hold
            take = (
                plan is not None
                and method == plan[0]
                and plan[1].search(path) is not None
                and self._current.forwarded >= plan[2]
            )
            if take:
                self._hold = None  # one request only
        if take:
            self.held.set()
            self._released.wait(self.HOLD_SECONDS)


# -- processes -----------------------------------------------------------------------------------


def session_processes(session_id: int) -> list[str]:
    """Live (non-zombie) processes in a session, as "pid cmdline"."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            state, session = fields[0], int(fields[3])
            if session == session_id and state != "Z":
                cmdline = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                found.append(f"{entry.name} {cmdline.strip()}")
    return found


@contextlib.contextmanager
def stopped_on_exit(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Whatever a test asserts, the process (and its session) does not outlive it."""
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=30)
