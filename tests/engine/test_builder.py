"""BuildKit detection (engine/builder.py): the probes run against the real docker CLI, and their
answer is kept per CLI binary, plugin and daemon selection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.engine import builder
from buildkit.errors import BuildKitUnavailableError


@pytest.fixture(autouse=True)
def fresh_detect() -> Iterator[None]:
    builder.detect.cache_clear()
    yield
    builder.detect.cache_clear()


@pytest.mark.docker
def test_probe_answer_is_kept_and_reused(tmp_path: Path) -> None:
    engine = builder.detect(cache_dir=tmp_path)
    assert engine.buildx
    assert engine.description.startswith("docker buildx ")
    record = json.loads((tmp_path / "engine.json").read_text())
    assert record["description"] == engine.description
    # A kept answer is used as is: no probe could say "sentinel".
    record["description"] = "sentinel"
    (tmp_path / "engine.json").write_text(json.dumps(record))
    builder.detect.cache_clear()
    assert builder.detect(cache_dir=tmp_path).description == "sentinel"


@pytest.mark.docker
def test_another_daemon_selection_probes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder.detect(cache_dir=tmp_path)
    record = json.loads((tmp_path / "engine.json").read_text())
    (tmp_path / "engine.json").write_text(json.dumps({**record, "description": "sentinel"}))
    monkeypatch.setenv("BUILDX_BUILDER", "default")
    builder.detect.cache_clear()
    assert builder.detect(cache_dir=tmp_path).description.startswith("docker buildx ")


def test_a_missing_cli_is_a_one_line_error_and_nothing_is_kept(tmp_path: Path) -> None:
    with pytest.raises(BuildKitUnavailableError, match="not on PATH"):
        builder.detect("no-such-docker-cli", cache_dir=tmp_path)
    assert not (tmp_path / "engine.json").exists()


def test_a_damaged_record_means_probing(tmp_path: Path) -> None:
    (tmp_path / "engine.json").write_text("{not json")
    with pytest.raises(BuildKitUnavailableError):
        builder.detect("no-such-docker-cli", cache_dir=tmp_path)
