"""Replays every request recorded from LiteLLM 1.109.1 (tests/golden/litellm) against the compatible
server over real HTTP and requires the very same answer: status, and a body equal field for field with
the same key order, the same JSON types (``0`` vs ``0.0``) and bit-identical floats."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.golden_files import GOLDEN_DIR
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _case_id(path: Path, index: int, request: dict[str, Any]) -> str:
    label = request.get("note") or " ".join(f"{name}={value}" for name, value in request["params"].items())
    slug = re.sub(r"[^A-Za-z0-9=._:-]+", "-", f"{request['path']} {label}").strip("-")[:80]
    return f"{path.stem}-{index:02d}-{slug}"


def _cases() -> list[Any]:
    return [
        pytest.param(path, index, id=_case_id(path, index, request))
        for path in GOLDEN_FILES
        for index, request in enumerate(_load(path)["requests"])
    ]


def first_difference(actual: Any, expected: Any, path: str = "$") -> str | None:
    """Where two parsed JSON documents differ, strictly: type (int ≠ float ≠ bool), dict key order,
    list length, float bits. ``None`` when identical."""
    if type(actual) is not type(expected):
        return f"{path}: {actual!r} ({type(actual).__name__}) != {expected!r} ({type(expected).__name__})"
    if isinstance(actual, dict):
        if list(actual) != list(expected):
            return f"{path}: keys {list(actual)} != {list(expected)}"
        for key in actual:
            found = first_difference(actual[key], expected[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(actual, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if actual == expected else f"{path}: {actual!r} != {expected!r}"


@dataclass
class GoldenServer:
    client: httpx.Client
    requests: list[dict[str, Any]]


@pytest.fixture(scope="module")
def golden_server() -> Iterator[Callable[[Path], GoldenServer]]:
    """One server per golden file, loaded with that file's keys, users and rows; started on first use."""
    with contextlib.ExitStack() as stack:
        started: dict[Path, GoldenServer] = {}

        def server_for(path: Path) -> GoldenServer:
            if path not in started:
                data = _load(path)
                store = LiteLLMStore(keys=data["keys"], users=data["users"], rows=data["rows"])
                base_url = stack.enter_context(running_litellm(store))
                client = stack.enter_context(httpx.Client(base_url=base_url, timeout=10))
                started[path] = GoldenServer(client, data["requests"])
            return started[path]

        yield server_for


def _headers(auth: str | None) -> dict[str, str]:
    if auth == "none":
        return {}
    return {"Authorization": f"Bearer {auth or MASTER_KEY}"}


@pytest.mark.parametrize(("golden_file", "index"), _cases())
def test_replay_matches_litellm(
    golden_server: Callable[[Path], GoldenServer], golden_file: Path, index: int
) -> None:
    server = golden_server(golden_file)
    recorded = server.requests[index]
    response = server.client.request(
        recorded["method"],
        recorded["path"],
        params=list(recorded["params"].items()),
        headers=_headers(recorded.get("auth")),
    )
    assert response.status_code == recorded["status"], response.text[:500]
    difference = first_difference(response.json(), recorded["body"])
    assert difference is None, difference


def test_golden_files_are_present() -> None:
    assert GOLDEN_FILES, f"no golden files in {GOLDEN_DIR}"
