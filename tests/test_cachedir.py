"""The cache directory's layout is a compatibility promise: a user's cache from an earlier version
must keep working. Each path is written out in full here, so changing one fails a test."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from buildkit import cachedir

C = Path("/c")
REPO = "127.0.0.1:5000/hello-app"
URL = "https://github.com/rbenv/ruby-build/archive/refs/tags/v20250101.tar.gz"
PACKAGE = Path(__file__).resolve().parent.parent / "buildkit"

# (what is asked, the path it must be). The hashes were computed by the code before the layout
# moved into cachedir.py: sha256 of the context's path (16 hex), of "<digest> <platform>" (32).
LAYOUT: list[tuple[Callable[[], Path], str]] = [
    (lambda: cachedir.engine_facts(C), "/c/engine.json"),
    (lambda: cachedir.state_record(C, REPO), "/c/state/127.0.0.1_5000_hello-app.json"),
    (lambda: cachedir.snapshot_record(C, REPO), "/c/snapshots/127.0.0.1_5000_hello-app.json"),
    (lambda: cachedir.context_digests(C, Path("/src/shop")), "/c/digests/3cb8c763ca500a39.json"),
    (
        lambda: cachedir.ruby_build_digests(C, Path("/opt/ruby-build")),
        "/c/digests/ruby-build-2f79fef32102d74e.json",
    ),
    (lambda: cachedir.history_file(C, "shop/ä app"), "/c/history/shop_app.jsonl"),
    (lambda: cachedir.verify_dir(C, "shop/web"), "/c/verify/shop_web"),
    (lambda: cachedir.native_scratch(C), "/c/native"),
    (lambda: cachedir.layer_sizes(C), "/c/reports/layer-sizes.json"),
    (lambda: cachedir.layer_files(C, "b" * 64), f"/c/reports/files/{'b' * 64}.json"),
    (
        lambda: cachedir.manifest_facts(C, "sha256:" + "c" * 64, "linux/amd64"),
        "/c/reports/manifests/fc8f4895515c12d4b578a5198a374c89.json",
    ),
    (lambda: cachedir.context_dir(C, REPO), "/c/contexts/127.0.0.1_5000_hello-app"),
    (lambda: cachedir.staging_lock(C, REPO), "/c/contexts/127.0.0.1_5000_hello-app.lock"),
    (lambda: cachedir.delta_context(C, REPO), "/c/contexts/127.0.0.1_5000_hello-app/delta"),
    (lambda: cachedir.dockerfile_dir(C, REPO), "/c/dockerfiles/127.0.0.1_5000_hello-app"),
    (
        lambda: cachedir.dockerfile_dir(C, REPO, "bulk"),
        "/c/dockerfiles/127.0.0.1_5000_hello-app/bulk",
    ),
    (
        lambda: cachedir.dockerfile_dir(C, REPO, "assets"),
        "/c/dockerfiles/127.0.0.1_5000_hello-app/assets",
    ),
    (lambda: cachedir.downloads(C), "/c/downloads"),
    (
        lambda: cachedir.download(C, URL),
        "/c/downloads/https_github.com_rbenv_ruby-build_archive_refs_tags_v20250101.tar.gz",
    ),
]


@pytest.mark.parametrize(("ask", "expected"), LAYOUT, ids=[e for _, e in LAYOUT])
def test_each_location_is_where_earlier_versions_put_it(
    ask: Callable[[], Path], expected: str
) -> None:
    assert ask() == Path(expected)


def test_every_public_function_is_pinned() -> None:
    public = {
        name
        for name, value in vars(cachedir).items()
        if callable(value) and not name.startswith("_") and value.__module__ == cachedir.__name__
    }
    source = Path(__file__).read_text(encoding="utf-8")
    assert public
    assert sorted(n for n in public if f"cachedir.{n}(" not in source) == []


def test_the_docstring_tree_names_every_top_level_entry() -> None:
    doc = cachedir.__doc__ or ""
    tops = {ask().relative_to(C).parts[0] for ask, _ in LAYOUT}
    assert len(tops) == 11
    assert sorted(t for t in tops if f"── {t}" not in doc) == []


def test_no_other_module_joins_a_name_onto_a_cache_dir() -> None:
    """`<something>.cache_dir / ...` or `cache_dir / ...` outside cachedir.py decides layout."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "cachedir.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                left = node.left
                name = left.attr if isinstance(left, ast.Attribute) else getattr(left, "id", None)
                if name == "cache_dir":
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []
