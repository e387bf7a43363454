"""Reports on the real daemon, BuildKit and registry (issue 5's acceptance 1, 3 and 4).

Each test gives the example app a source file with a fresh nonce, so only the app layer builds
(about a second) and the ruby and base images already in the registry are reused.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import tarfile
import time
import urllib.request
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.engines import Engine
from tests.registry_fixtures import image_manifest

pytestmark = [pytest.mark.docker]

CHAIN_COLORS = {"os": "#64748b", "ruby": "#dc2626", "base": "#d97706", "app": "#2563eb"}


def touch_source(project: Project) -> None:
    (project.root / "lib" / "nonce.rb").write_text(f"NONCE = {time.time_ns()}\n")


def build(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("app", "--push", "--json", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.stdout)
    data["_stderr"] = result.stderr
    return data


def images(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {image["layer"]: image for image in document["images"]}


def manifest_layers(image: str) -> list[dict[str, Any]]:
    """The layers of the platform image, read independently of imgbuild."""
    layers: list[dict[str, Any]] = image_manifest(image)["layers"]
    return layers


def tar_size(image: str, digest: str) -> int:
    """A layer's uncompressed size counted independently: file bytes plus symlink targets."""
    host, _, rest = image.partition("/")
    repo = rest.rpartition(":")[0]
    with urllib.request.urlopen(f"http://{host}/v2/{repo}/blobs/{digest}", timeout=60) as blob:
        data = blob.read()
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            if member.isreg() and "/.wh." not in f"/{member.name}":
                total += member.size
            elif member.issym():
                total += len(member.linkname.encode())
    return total


def docker_size(image: str) -> int:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout)


@pytest.mark.engines
def test_after_a_build_every_image_has_both_metrics_matching_registry_and_daemon(
    project: Project, engine: Engine
) -> None:
    # The chain in the registry first (a no-op when an earlier test pushed it; on a fresh machine
    # this test may be the engine's first push): what follows measures a source change's push.
    build(project)
    touch_source(project)
    data = build(project)
    report = data["report"]
    assert report["schema"] == "imgbuild.report/v1"
    found = images(report)
    assert list(found) == ["ruby", "base", "app"]
    for name, image in found.items():
        layers = manifest_layers(image["image"])
        assert image["source"] == "registry"
        assert image["compressed_bytes"] == sum(layer["size"] for layer in layers)
        assert [x["digest"] for x in image["layers"]] == [layer["digest"] for layer in layers]
        assert image["uncompressed_bytes"] > image["compressed_bytes"] > 0
        levels = image["chain"]
        assert (
            list(levels) == ["os", "ruby", "base", "app"][: ["ruby", "base", "app"].index(name) + 2]
        )
        for metric in ("compressed_bytes", "uncompressed_bytes"):
            assert sum(level[metric] for level in levels.values()) == image[metric]
    app = found["app"]
    assert app["uncompressed_bytes"] == sum(
        tar_size(app["image"], x["digest"]) for x in app["layers"]
    )
    # A node that pulled the OS base image reports its size the same way (the builder's daemon
    # counts the layers it built itself without their symlinks, so it is not the reference).
    subprocess.run(
        ["docker", "pull", "-q", project.dev.base_image],
        check=True,
        timeout=300,
        capture_output=True,
    )
    if engine.name == "system":
        assert app["chain"]["os"]["uncompressed_bytes"] == docker_size(project.dev.base_image)
    else:  # the containerd store's inspect Size is the compressed content: count the tarball
        os_layers = manifest_layers(project.dev.base_image)
        assert app["chain"]["os"]["uncompressed_bytes"] == sum(
            tar_size(project.dev.base_image, layer["digest"]) for layer in os_layers
        )
    base_layers = [layer["digest"] for layer in manifest_layers(found["base"]["image"])]
    app_level = [x for x in app["layers"] if x["chain"] == "app"]
    assert [x["digest"] for x in app["layers"][: len(base_layers)]] == base_layers
    assert app["chain"]["app"]["layers"] == len(app_level) == len(app["layers"]) - len(base_layers)

    times = app["times"]
    assert times["built"]
    assert times["pushed"]
    assert any(step["name"].endswith("COPY . /app/") for step in times["steps"])
    assert times["steps_seconds"] + times["overhead_seconds"] == pytest.approx(
        times["build_seconds"], abs=0.01
    )
    run = report["run"]
    assert run["wall_seconds"] == pytest.approx(data["seconds"], abs=0.002)
    assert sum(row["seconds"] for row in run["breakdown"]) == pytest.approx(
        run["wall_seconds"], abs=0.001 * len(run["breakdown"])
    )
    assert run["unattributed_seconds"] >= 0  # the pipeline's own timers never exceed the wall
    # What the base lacked: the app level, less a layer the base has too (the empty layer of a
    # delta build on a fresh source snapshot, applayer/snapshot.py, is the same blob as any empty
    # layer).
    base_digests = set(base_layers)
    fresh = {x["digest"]: x["compressed_bytes"] for x in app_level}
    assert run["pushed_bytes"] == sum(v for d, v in fresh.items() if d not in base_digests) > 0
    table = data["_stderr"]
    for words in (
        "Image sizes",
        "compressed",
        "uncompressed",
        "OS base image",
        "app source",
        "Build and push times",
        "wall time",
    ):
        assert words in table


@pytest.mark.engines
def test_an_unpushed_build_is_measured_in_the_daemon_without_compressed_sizes(
    project: Project,
) -> None:
    touch_source(project)
    result = project.run("app", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    app = images(json.loads(result.stdout)["report"])["app"]
    assert app["source"] == "daemon"
    assert app["compressed_bytes"] is None
    assert (
        sum(level["uncompressed_bytes"] for level in app["chain"].values())
        == (app["uncompressed_bytes"])
    )
    assert app["uncompressed_bytes"] > app["chain"]["os"]["uncompressed_bytes"] > 0
    assert "push to measure it" in result.stderr


@pytest.mark.engines
def test_deploy_pull_delta_of_a_source_change_is_the_app_layer(project: Project) -> None:
    touch_source(project)
    first = images(build(project)["report"])["app"]
    touch_source(project)
    report = build(project)["report"]
    app = images(report)["app"]
    delta = report["deploy_pull"]
    assert delta["previous_digest"] == first["digest"]
    assert delta["previous_from"] == "history"
    # What a node running the first image lacks: the layers that are not in it (with app.delta
    # that is the source snapshot and the edit, or the edit alone; applayer/snapshot.py).
    had = {x["digest"] for x in first["layers"]}
    new = {x["digest"]: x["compressed_bytes"] for x in app["layers"] if x["digest"] not in had}
    assert new
    assert delta["layers"] == len(new)
    assert delta["compressed_bytes"] == sum(new.values())

    history = project.run("report", "--history", "--json")
    assert history.returncode == 0, history.stderr
    records = json.loads(history.stdout)
    assert [r["images"][-1]["digest"] for r in records] == [first["digest"], app["digest"]]
    assert all(r["run"]["wall_seconds"] > 0 for r in records)


# -- HTML in headless Chromium


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0)
    assert color in (2, 6)
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + best) & 0xFF
        rows.append(
            bytes(line) if channels == 3 else bytes(b for j, b in enumerate(line) if j % 4 != 3)
        )
        previous = line
    return width, height, rows


def colour_counts(rows: list[bytes]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in rows:
        for x in range(0, len(row), 3):
            counts[f"#{row[x]:02x}{row[x + 1]:02x}{row[x + 2]:02x}"] += 1
    return counts


def screenshot(html: Path, png: Path, profile: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed; run `make services` (apt-get install -y chromium)")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1280,2000",
            f"file://{html}",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )


def test_html_report_renders_its_charts_in_chromium(project: Project, tmp_path: Path) -> None:
    touch_source(project)
    build(project)
    build(project)  # a second record, so the trend chart has a line
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    result = project.run("report", "--html", str(html))
    assert result.returncode == 0, result.stderr
    page = html.read_text()
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<svg") == 4  # sizes, steps, size trend, time trend
    screenshot(html, png, tmp_path / "chromium-profile")
    width, height, rows = read_png(png)
    assert (width, height) == (1280, 2000)
    counts = colour_counts(rows)
    # Legend keys alone are ~150 pixels of a colour; bars are thousands (os and ruby are the
    # big levels; base and app are thin in the size chart but also draw steps and trend lines).
    minimum = {"os": 10_000, "ruby": 10_000, "base": 800, "app": 800}
    for level, colour in CHAIN_COLORS.items():
        assert counts[colour] > minimum[level], f"the {level} bars ({colour}) are not drawn"
    assert counts["#7c3aed"] > 200, "the push bar is not drawn"
    assert len(counts) > 50  # text and anti-aliasing: a real page, not a blank one
