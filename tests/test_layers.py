"""The rooms only look down: ``server → schema → resolvers → datasources``, each through
``usage_gateway``.

A module may import from its own room and the ones below it, never from one above: datasources never
import the schema, the resolvers or the web app; resolvers never import the schema or the app; the schema
never imports the app. None of them imports the dev tools (the LiteLLM-compatible server, the demo),
which sit beside the app and may use everything; no product module imports the tests or the benchmarks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("datasources", "resolvers", "schema", "server")  # bottom to top
NOT_PRODUCT = ("tests", "bench")


def imported_rooms(path: Path) -> set[str]:
    """What a module imports: the room of each ``usage_gateway.<room>`` import, else the top-level name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "usage_gateway":
                names = [f"usage_gateway.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.add(parts[1] if parts[0] == "usage_gateway" and len(parts) > 1 else parts[0])
    return found


def violations(room: str, forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / room).rglob("*.py"))
        for name in sorted(imported_rooms(path) & forbidden)
    ]


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    dev_tools = {"devtools"} if layer != "server" else set()
    assert violations(layer, above | dev_tools | set(NOT_PRODUCT)) == []


def test_the_dev_tools_do_not_import_the_tests_or_the_benchmarks() -> None:
    assert violations("devtools", set(NOT_PRODUCT)) == []


def test_the_check_sees_upward_and_bare_imports(tmp_path: Path) -> None:
    module = tmp_path / "upward.py"
    module.write_text(
        "import os\nfrom usage_gateway.schema.usage import Usage\nfrom usage_gateway import server\n"
        "import datasources.db\nfrom . import sibling\n"
    )
    assert imported_rooms(module) == {"os", "schema", "server", "datasources"}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(("usage_gateway", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports, inside functions too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found & known


def import_circles(paths: list[Path], root: Path = ROOT) -> list[list[str]]:
    """The groups of modules that import one another, directly or through others."""
    modules = {module_name(path, root): path for path in paths}
    edges = {name: imported_modules(path, set(modules)) for name, path in modules.items()}
    reach: dict[str, set[str]] = {}
    for start in modules:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for following in edges[todo.pop()] - seen:
                seen.add(following)
                todo.append(following)
        reach[start] = seen
    groups = {tuple(sorted(m for m in reach[start] if start in reach[m])) for start in modules}
    return sorted(list(group) for group in groups if group)


def product_modules(root: Path) -> list[Path]:
    return [path for room in (*LAYERS, "devtools", "migrations") for path in (root / room).rglob("*.py")]


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Not even lazily, inside a function: two modules that need each other are one module, or share a
    third below them both (as the export writers share ``exports.columns``)."""
    assert import_circles(product_modules(ROOT)) == []


def test_the_circle_check_sees_lazy_and_roundabout_imports(tmp_path: Path) -> None:
    room = tmp_path / "datasources" / "exports"
    room.mkdir(parents=True)
    (room / "__init__.py").write_text("")
    (room / "a.py").write_text("from usage_gateway.datasources.exports.b import B\n")
    (room / "b.py").write_text("import usage_gateway.datasources.exports.c\n")
    (room / "c.py").write_text("def f():\n    from usage_gateway.datasources.exports import a\n")
    (room / "d.py").write_text("from usage_gateway.datasources.exports import a\n")
    assert import_circles(product_modules(tmp_path), tmp_path) == [
        [f"usage_gateway.datasources.exports.{name}" for name in "abc"]
    ]
