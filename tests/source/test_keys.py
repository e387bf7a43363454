"""Content keys (source.keys): what a key covers, and that it does not drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.chain.model import LayerSpec
from buildkit.source.keys import KEY_LENGTH, compute_key

PARENT = "a" * 64
INPUTS = {"ruby version": "3.3.8", "platform": "default", "tree": "sha256:" + "b" * 64}


def test_same_inputs_give_the_same_key_in_any_order() -> None:
    key = compute_key("base", PARENT, INPUTS)
    assert compute_key("base", PARENT, dict(INPUTS)) == key
    assert compute_key("base", PARENT, dict(reversed(INPUTS.items()))) == key
    assert len(key) == 64
    assert all(c in "0123456789abcdef" for c in key)


@pytest.mark.parametrize(
    ("layer", "parent", "inputs"),
    [
        pytest.param("app", PARENT, INPUTS, id="layer"),
        pytest.param("base", "c" * 64, INPUTS, id="parent key"),
        pytest.param("base", None, INPUTS, id="no parent"),
        pytest.param("base", PARENT, {**INPUTS, "ruby version": "3.3.9"}, id="input value"),
        pytest.param("base", PARENT, {**INPUTS, "extra": ""}, id="added input"),
        pytest.param(
            "base", PARENT, {k: v for k, v in INPUTS.items() if k != "tree"}, id="removed input"
        ),
        pytest.param(
            "base",
            PARENT,
            {("ruby_version" if k == "ruby version" else k): v for k, v in INPUTS.items()},
            id="input name",
        ),
    ],
)
def test_every_input_changes_the_key(
    layer: str, parent: str | None, inputs: dict[str, str]
) -> None:
    assert compute_key(layer, parent, inputs) != compute_key("base", PARENT, INPUTS)


def test_names_values_and_parent_do_not_run_into_each_other() -> None:
    """Keys hash a structure, not a concatenation: moving text across a boundary is a change."""
    assert compute_key("x", None, {"a": "b:c"}) != compute_key("x", None, {"a:b": "c"})
    assert compute_key("x", None, {}) != compute_key("x", "", {})
    assert compute_key("x", "p", {}) != compute_key("xp", None, {})


def test_keys_do_not_drift_between_versions() -> None:
    """Every registry holds images under these keys: a new canonical form would rebuild every
    user's whole chain on upgrade. Change this value only on purpose."""
    key = compute_key("ruby", None, {"ruby version": "3.3.8", "platform": "default"})
    assert key == "3a7d2fa1e5a2d75252c66a0c1a5a7e24bbab357e35ca042588b6be12012e5a48"


def test_images_are_tagged_with_the_key_prefix() -> None:
    key = compute_key("ruby", None, INPUTS)
    spec = LayerSpec(
        name="ruby",
        repository="reg.test:5000/shop-ruby",
        key=key,
        parent=None,
        dockerfile=Path("Dockerfile"),
        context=None,
        ignore=(),
        build_args={},
        inputs=INPUTS,
    )
    assert KEY_LENGTH == 12
    assert spec.tag == key[:12]
    assert spec.image == f"reg.test:5000/shop-ruby:{key[:12]}"
