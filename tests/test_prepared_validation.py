"""Each document text is parsed and validated once (schema/prepared_validation.py): later requests with the
same text reuse it, yet the rules that depend on the variables (cost, NUL characters) still hold per
request, with the errors an unprepared text gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema

from tests.api_client import Gateway
from tests.gateway_harness import clock_at, long_after
from tests.test_answer_cache import DAYS, gateway, litellm, rows_for

PAGE = """
query Page($from: Date!, $to: Date!, $n: Int!) {
  usage(filter: {from: $from, to: $to}) {
    totals { spend requests }
    byUser(first: $n) { totalCount nodes { userId metrics { spend } timeSeries { date } } }
  }
}"""
SMALL = {"from": "2026-10-05", "to": "2026-10-06", "n": 2}
LARGE = {**SMALL, "n": 400}


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per document Strawberry validates."""
    calls: list[int] = []
    validate = strawberry_schema.validate_document

    def counted(*args: Any) -> Any:
        calls.append(1)
        return validate(*args)

    monkeypatch.setattr(strawberry_schema, "validate_document", counted)
    return calls


@asynccontextmanager
async def uncached(database_url: str, redis_url: str, **overrides: Any) -> AsyncIterator[Gateway]:
    """A gateway without the answer cache: every request executes."""
    with litellm(rows_for(DAYS)) as (_, url):
        clock = clock_at(long_after(DAYS[-1]))
        async with gateway(
            database_url, redis_url, url, clock=clock, answer_cache_ttl_seconds=0, **overrides
        ) as (gw, _):
            yield gw


async def test_a_text_is_validated_once_and_costed_per_request(
    database_url: str, redis_url: str, validations: list[int]
) -> None:
    async with uncached(database_url, redis_url) as gw:
        first = await gw.query(PAGE, SMALL)
        assert len(validations) == 1
        second = await gw.query(PAGE, LARGE)
        again = await gw.query(PAGE, SMALL)
        assert len(validations) == 1
        assert again == first
        assert second["extensions"]["cost"]["requested"] > first["extensions"]["cost"]["requested"]
        await gw.query(PAGE.replace("totals", "totals "), SMALL)  # another text: validated in full
        assert len(validations) == 2
    # The cost a prepared text reports is the one its validation computes.
    async with uncached(database_url, redis_url) as fresh:
        assert (await fresh.query(PAGE, LARGE))["extensions"] == second["extensions"]


async def test_a_prepared_text_keeps_the_cost_limit_and_the_nul_check(
    database_url: str, redis_url: str, validations: list[int]
) -> None:
    async with uncached(database_url, redis_url) as probe:
        small = (await probe.query(PAGE, SMALL))["extensions"]["cost"]["requested"]
        large = (await probe.query(PAGE, LARGE))["extensions"]["cost"]["requested"]
    limit = (small + large) // 2
    async with uncached(database_url, redis_url, max_query_cost=limit) as gw:
        before = len(validations)
        unprepared = (await gw.post(PAGE, LARGE)).json()
        await gw.query(PAGE, SMALL)  # prepares the text
        assert len(validations) == before + 2
        refused = (await gw.post(PAGE, LARGE)).json()
        assert refused == unprepared
        assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        nul = {**SMALL, "from": "2026-10-05\u0000"}
        with_nul = (await gw.post(PAGE, nul)).json()
        assert with_nul["data"] is None
        assert with_nul["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert len(validations) == before + 4  # both refused requests were validated in full
