"""The per-layer records of what this machine last built or used (state.py)."""

from __future__ import annotations

from pathlib import Path

from buildkit.chain import state


def test_record_round_trips_and_is_not_rewritten_when_unchanged(tmp_path: Path) -> None:
    record = state.LayerRecord(key="a" * 64, image="reg/x-app:aaaaaaaaaaaa", inputs={"f": "1"})
    state.save(tmp_path, "reg/x-app", record)
    assert state.load(tmp_path, "reg/x-app") == record
    path = next((tmp_path / "state").iterdir())
    before = path.stat().st_mtime_ns, path.stat().st_ino
    state.save(tmp_path, "reg/x-app", record)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before  # no atomic rename
    changed = state.LayerRecord(key="b" * 64, image="reg/x-app:bbbbbbbbbbbb", inputs={"f": "2"})
    state.save(tmp_path, "reg/x-app", changed)
    assert state.load(tmp_path, "reg/x-app") == changed
    longer = state.LayerRecord(key="b" * 64, image="reg/x-app:bbbbbbbbbbbb2", inputs={"f": "3"})
    state.save(tmp_path, "reg/x-app", longer)  # same key, an image name that extends the old
    assert state.load(tmp_path, "reg/x-app") == longer


def test_damaged_record_loads_as_none_and_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "reg_x-app.json").write_text('{"key": "a')
    assert state.load(tmp_path, "reg/x-app") is None
    record = state.LayerRecord(key="a" * 64, image="reg/x-app:aaaaaaaaaaaa", inputs={})
    state.save(tmp_path, "reg/x-app", record)
    assert state.load(tmp_path, "reg/x-app") == record
