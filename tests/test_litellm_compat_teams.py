"""The LiteLLM-compatible server answers ``/team/list`` as tests/golden/litellm/from_source/teams.json
says LiteLLM 1.109.1 does (shape derived from LiteLLM's source: see the README beside it), over real HTTP,
with the strictness of the recorded golden files: status, key order, JSON types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.golden_files import GOLDEN_DIR
from tests.test_litellm_compat_golden import first_difference
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm

TEAMS = GOLDEN_DIR / "from_source" / "teams.json"
DATA: dict[str, Any] = json.loads(TEAMS.read_text())


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    store = LiteLLMStore(keys=DATA["keys"], users=DATA["users"], rows=DATA["rows"])
    store.set_teams(DATA["teams"])
    with running_litellm(store) as url, httpx.Client(base_url=url) as http:
        yield http


@pytest.mark.parametrize("index", range(len(DATA["requests"])))
def test_team_list_answers_as_litellm(client: httpx.Client, index: int) -> None:
    request = DATA["requests"][index]
    response = client.get(
        request["path"], params=request["params"], headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == request["status"]
    assert first_difference(response.json(), request["body"]) is None


def test_the_file_is_no_recording() -> None:
    """It must never pass for a genuine recording (those live one directory up and are replayed by
    tests/test_litellm_compat_golden.py)."""
    assert "not recorded" in DATA["provenance"]
    assert TEAMS.parent != GOLDEN_DIR
