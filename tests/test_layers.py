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
