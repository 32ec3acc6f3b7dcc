"""The layers only look down: ``server → schema → resolvers → datasources``.

A module may import from its own layer and the ones below it, never from one above: datasources never
import Strawberry's side (schema), the resolvers or the web app; resolvers never import the schema or
the app; the schema never imports the app. No product module imports the tests or the benchmarks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("datasources", "resolvers", "schema", "server")  # bottom to top
NOT_PRODUCT = ("tests", "bench")


def _imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _violations(layer: str) -> list[str]:
    above = LAYERS[LAYERS.index(layer) + 1 :]
    forbidden = {*above, *NOT_PRODUCT}
    return [
        f"{path.relative_to(ROOT)} imports {package}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for package in sorted(_imported_packages(path) & forbidden)
    ]


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    assert _violations(layer) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "upward.py"
    module.write_text("import os\nfrom schema.usage import Usage\nfrom . import sibling\n")
    assert _imported_packages(module) == {"os", "schema"}
