"""Label encoding of recorded inputs, the plan's reasons, secret redaction."""

from __future__ import annotations

import hashlib

import pytest

from buildkit import proc
from buildkit.chain import labels, plan


def test_inputs_round_trip_through_a_label() -> None:
    inputs = {"ruby version": "3.3.8", "file:Gemfile.lock": "sha256:" + "a" * 64}
    assert labels.decode_inputs(labels.encode_inputs(inputs)) == inputs


def test_huge_inputs_fold_under_the_argv_limit() -> None:
    inputs = {f"file:app/d{i % 50}/f{i}.rb": f"sha256:{i:064x}" for i in range(20000)}
    encoded = labels.encode_inputs(inputs)
    assert len(encoded) <= labels.MAX_ENCODED
    decoded = labels.decode_inputs(encoded)
    assert decoded is not None
    assert any(key.startswith("file:app/") for key in decoded)


def test_damaged_label_decodes_to_none() -> None:
    assert labels.decode_inputs("z1:not-base64!") is None
    assert labels.decode_inputs("something else") is None


def test_reasons_name_versions_digests_and_files() -> None:
    old = {
        "ruby version": "3.3.7",
        "Dockerfile": "sha256:1",
        "OS packages": "curl",
        "file:app/models/user.rb": "sha256:a",
        "file:old.rb": "sha256:b",
    }
    new = {
        "ruby version": "3.3.8",
        "Dockerfile": "sha256:2",
        "OS packages": "curl libpq5",
        "file:app/models/user.rb": "sha256:c",
        "file:new.rb": "sha256:d",
    }
    reasons = plan.diff_inputs(old, new)
    assert "ruby version 3.3.7 → 3.3.8" in reasons
    assert "Dockerfile changed" in reasons
    assert "OS packages curl → curl libpq5" in reasons
    assert "app/models/user.rb changed" in reasons
    assert "new.rb added" in reasons
    assert "old.rb removed" in reasons


def test_redaction_of_tokens_and_registered_secrets() -> None:
    proc.register_secret("hunter2-very-secret")
    text = (
        "login password=abc123 token: xyz Authorization: Basic QVdTOnNlY3JldA== hunter2-very-secret"
    )
    redacted = proc.redact(text)
    for secret in ("abc123", "xyz", "QVdTOnNlY3JldA==", "hunter2-very-secret"):
        assert secret not in redacted
    assert proc.redact("AKIAIOSFODNN7EXAMPLE") == "***"


def _encode_by_trying_every_fold(inputs: dict[str, str]) -> str:
    """The encoding as first written: pack, and fold deeper while too big."""
    packed = labels._pack(inputs)
    depth = 3
    while len(packed) > labels.MAX_ENCODED and depth > 0:
        packed = labels._pack(labels._fold(inputs, depth))
        depth -= 1
    return packed


@pytest.mark.parametrize("files", [10, 1_000, 3_000, 12_000])
def test_skipping_folds_that_cannot_fit_changes_no_label(files: int) -> None:
    """A map of more distinct digests than fit once compressed is never packed whole (~0.1 s
    of zlib level 9 on a 10k-file app); the label is the same as trying every fold."""
    inputs = {"dockerfile": "sha256:" + hashlib.sha256(b"d").hexdigest()}
    for i in range(files):
        path = f"file:app/d{i % 7}/s{i % 13}/f{i}.rb"
        inputs[path] = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
    encoded = labels.encode_inputs(inputs)
    assert encoded == _encode_by_trying_every_fold(inputs)
    assert labels.decode_inputs(encoded) is not None


def test_process_labels_round_trip() -> None:
    processes = (("web", "bundle exec puma -C config/puma.rb"), ("worker", "bin/jobs"))
    written = labels.process_labels(processes)
    assert written == {
        "org.imgbuild.process.web": "bundle exec puma -C config/puma.rb",
        "org.imgbuild.process.worker": "bin/jobs",
    }
    others = {labels.KEY: "k", "org.opencontainers.image.revision": "abc"}
    assert labels.processes_from_labels({**others, **written}) == dict(processes)
