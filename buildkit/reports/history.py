"""The build history: one JSON line per `imgbuild <layer>` run (images, keys, commit, sizes, times).

Runs append under an flock; every TRIM_SLACK runs the file is rewritten with the newest
MAX_RECORDS through a temp file and os.replace. A run killed mid-append leaves a torn line, on a
line of its own, which every reader drops.
It feeds the trend charts, `imgbuild report --history`, "the previous app image" of the
deploy pull delta, and the verify summary `imgbuild report` shows for the current app image.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from buildkit import cachedir, fsutil, log
from buildkit.config.loading import Config
from buildkit.reports.model import ImageSizes, Layer

SCHEMA = "imgbuild.history/v1"
MAX_RECORDS = 500
TRIM_SLACK = 50  # appends between two trims of the file back to MAX_RECORDS
# Layer sizes of older records are already in the LayerStore (which persists what it is
# seeded with): re-expanding all 500 records on every run cost a no-op ~0.1 s.
SEED_RECORDS = 20


def default_path(config: Config) -> Path:
    return cachedir.history_file(config.cache_dir, config.name)


def read(path: Path) -> list[dict[str, Any]]:
    """The newest MAX_RECORDS records, oldest first; unreadable lines are skipped with one
    warning."""
    records, bad = [], 0
    for line in _lines(path):
        try:
            record = _parse(line)
        except ValueError:
            bad += 1
            continue
        if record is not None:
            records.append(record)
    if bad:
        log.warn(f"{path}: skipped {bad} unreadable line(s)")
    return records[-MAX_RECORDS:]  # the file may hold up to TRIM_SLACK more between trims


class Recent(Sequence[dict[str, Any]]):
    """The records of a history file, parsed newest first and only as far back as asked.

    A run's report needs the newest few (layer sizes, the previous image); parsing all 500
    lines of 7 kB costs a no-op ~60 ms. Iterating `reversed()` parses lazily; length and
    indexing (rare) parse the whole file."""

    def __init__(self, path: Path) -> None:
        self._lines = _lines(path)
        self._newest: list[dict[str, Any]] = []  # parsed so far, newest first
        self._next = len(self._lines) - 1  # the next line to parse, going back

    def __reversed__(self) -> Iterator[dict[str, Any]]:
        yield from self._newest
        while self._next >= 0:
            line = self._lines[self._next]
            self._next -= 1
            record = None
            with contextlib.suppress(ValueError):  # a torn line: skipped, as `read` does
                record = _parse(line)
            if record is not None:
                self._newest.append(record)
                yield record

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def _all(self) -> list[dict[str, Any]]:
        for _ in reversed(self):
            pass
        return self._newest[::-1]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warn(f"cannot read the build history {path}: {exc}")
        return []


def _parse(line: str) -> dict[str, Any] | None:
    """A history record, None for another schema; ValueError for a line that is not JSON."""
    record = json.loads(line)
    if isinstance(record, dict) and record.get("schema") == SCHEMA:
        return record
    return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append(path: Path, record: Mapping[str, Any]) -> None:
    """Add a record. It is appended in place (the file is ~3 MB at 500 records: rewriting it
    whole cost every run ~18 ms); once the file holds TRIM_SLACK lines more than MAX_RECORDS it
    is rewritten with the newest MAX_RECORDS, through a temp file. A torn line (a run killed
    mid-write) stays on a line of its own and is dropped by every reader and by the rewrite."""
    line = json.dumps(dict(record), separators=(",", ":"), sort_keys=True)
    with _locked(path):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        if data.count(b"\n") < MAX_RECORDS + TRIM_SLACK:
            lead = "" if not data or data.endswith(b"\n") else "\n"
            with path.open("a", encoding="utf-8") as out:
                out.write(f"{lead}{line}\n")
                out.flush()
                os.fsync(out.fileno())
            return
        lines = data.decode("utf-8", "replace").splitlines()
        kept = [x for x in lines if x.startswith("{") and x.endswith("}")]
        kept = [*kept[-(MAX_RECORDS - 1) :], line]
        fsutil.atomic_write_text(path, "".join(x + "\n" for x in kept))


def compact_image(sizes: ImageSizes) -> dict[str, Any]:
    """An image's sizes for a history line: layers as [digest, compressed, uncompressed, level,
    diff_id]."""
    data = sizes.as_json()
    data["layers"] = [
        [layer.digest, layer.compressed, layer.uncompressed, layer.chain, layer.diff_id]
        for layer in sizes.layers
    ]
    data.pop("notes", None)
    return data


def image_from_record(entry: Mapping[str, Any]) -> ImageSizes:
    expanded = dict(entry)
    expanded["layers"] = [
        Layer(
            digest=item[0],
            diff_id=item[4] if len(item) > 4 else None,
            compressed=item[1],
            uncompressed=item[2],
            chain=item[3],
        ).as_json()
        for item in entry.get("layers") or ()
        if isinstance(item, list) and len(item) >= 4
    ]
    return ImageSizes.from_json(expanded)


def images_of(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(item.get("layer")): item for item in record.get("images") or ()}


def previous(
    records: Sequence[Mapping[str, Any]], layer: str, digest: str | None
) -> ImageSizes | None:
    """The newest recorded image of `layer` in the registry with another digest than `digest`."""
    for record in reversed(records):
        entry = images_of(record).get(layer)
        if entry and entry.get("digest") and entry.get("digest") != digest:
            return image_from_record(entry)
    return None


def measured_layers(records: Sequence[Mapping[str, Any]]) -> list[tuple[str | None, int | None]]:
    """(diff_id, uncompressed) of every layer of a registry image in the newest records."""
    found = []
    newest = list(itertools.islice(reversed(records), SEED_RECORDS))
    for record in reversed(newest):
        for entry in record.get("images") or ():
            if entry.get("source") == "registry":
                found += [(x.diff_id, x.uncompressed) for x in image_from_record(entry).layers]
    return found


def latest_verify(records: Sequence[Mapping[str, Any]], layer: str, key: str) -> Any:
    """The verify summary of the newest run that verified `layer` at `key`, or None. Records
    written before verify was recorded have no `verify` key: they verified nothing."""
    for record in reversed(records):
        entry = images_of(record).get(layer)
        if entry and entry.get("key") == key and record.get("verify"):
            return record["verify"]
    return None


def latest_times(records: Sequence[Mapping[str, Any]], layer: str, key: str) -> Any:
    """The times of the newest run that built `layer` at `key`, or None."""
    for record in reversed(records):
        entry = images_of(record).get(layer)
        if entry and entry.get("key") == key and (entry.get("times") or {}).get("built"):
            return entry["times"]
    return None
