"""The import graph against the layer order written in docs/architecture.md.

Every `import` of a buildkit module counts, wherever it is (module level, inside a function,
under TYPE_CHECKING): a module may import its own layer and the layers below it, never one above,
and no chain of imports may come back to where it started.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "buildkit"
DOC = ROOT / "docs" / "architecture.md"
_ROW = re.compile(r"^\| (?P<layer>[a-z]+) \| (?P<modules>(?:`buildkit[\w.]*` ?)+)\|$")


def layer_table() -> list[tuple[str, list[str]]]:
    """(layer, module prefixes), top first, from the doc's table."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line.strip())
        if match:
            rows.append((match["layer"], re.findall(r"`([\w.]+)`", match["modules"])))
    return rows


def all_modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """(line, imported buildkit module) for every import statement in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "buildkit":
                    yield node.lineno, _known(alias.name, modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "buildkit":
                continue
            for alias in node.names:  # `from buildkit.x import y`: y may be a module
                full = f"{node.module}.{alias.name}"
                yield node.lineno, full if full in modules else _known(node.module, modules)


def _known(name: str, modules: dict[str, Path]) -> str:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def layer_of(module: str, table: list[tuple[str, list[str]]]) -> int:
    """The row index of the longest prefix naming this module (0 is the top)."""
    best, best_len = -1, -1
    for rank, (_, prefixes) in enumerate(table):
        for prefix in prefixes:
            exact = prefix == "buildkit"  # the package itself, not everything under it
            hit = module == prefix if exact else module == prefix or module.startswith(prefix + ".")
            if hit and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    return best


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for _, imported in imports_of(path, modules):
            if imported != module:
                edges[module].add(imported)
    return edges


def test_the_doc_names_every_layer_once() -> None:
    table = layer_table()
    names = [layer for layer, _ in table]
    assert len(names) >= 10, f"{DOC}: the layer table was not found or lost rows: {names}"
    assert len(set(names)) == len(names)


def test_every_module_belongs_to_a_layer() -> None:
    table = layer_table()
    orphans = [m for m in all_modules() if layer_of(m, table) < 0]
    assert not orphans, f"add these to the layer table in {DOC.name}: {orphans}"


def test_imports_point_down_only() -> None:
    table = layer_table()
    modules = all_modules()
    upward = []
    for module, path in modules.items():
        mine = layer_of(module, table)
        for line, imported in imports_of(path, modules):
            theirs = layer_of(imported, table)
            if theirs < mine:
                upward.append(
                    f"{path.relative_to(ROOT)}:{line}: {module} ({table[mine][0]}) imports "
                    f"{imported} ({table[theirs][0]})"
                )
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    edges = graph()
    cycle = _find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize(
    ("edges", "cyclic"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"a"}}, True),
    ],
)
def test_the_cycle_finder_itself(edges: dict[str, set[str]], cyclic: bool) -> None:
    assert (_find_cycle(edges) is not None) is cyclic


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The checker on a made-up module: an engine module importing the CLI is reported."""
    table = layer_table()
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from buildkit.cli import app\n")
    modules = {**all_modules(), "buildkit.engine.bad": bad}
    imported = [name for _, name in imports_of(bad, modules)]
    assert imported == ["buildkit.cli.app"]
    assert layer_of("buildkit.cli.app", table) < layer_of("buildkit.engine.bad", table)
