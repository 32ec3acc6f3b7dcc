"""The ``outcome`` of ``usage_gateway_graphql_requests_total`` for the ways a request ends other than ``ok``:
refused before GraphQL (413), shed by admission control, rate limited, over a query limit."""

from __future__ import annotations

import asyncio

import pytest

from tests.api_client import Gateway, open_gateway, seed_days
from tests.metrics_scrape import Samples, changes, key, labelled, parse
from tests.test_admission import Blocked, day, totals_of, until
from usage_gateway.resolvers import usage as usage_resolvers
from usage_gateway.server.graphql_view import GraphQLView
from usage_gateway.server.metrics import ERROR, OK, OVERLOADED, outcome_of, outcome_of_errors

REQUESTS = "usage_gateway_graphql_requests_total"


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Blocked:
    """Totals wait for ``gate``: an operation holds its admission slot until the test lets it go."""
    blocked = Blocked()
    monkeypatch.setattr(usage_resolvers, "totals", blocked.totals)
    return blocked


async def scrape(gw: Gateway) -> Samples:
    return parse((await gw.client.get("/metrics")).text)


def test_outcomes_are_bounded() -> None:
    assert outcome_of(None) == OK
    assert outcome_of("OVERLOADED") == OVERLOADED
    assert outcome_of("RATE_LIMITED") == "RATE_LIMITED"
    assert outcome_of("SOMETHING_NEW") == ERROR
    assert outcome_of_errors(None) == OK
    assert outcome_of_errors([{"message": "x"}]) == ERROR
    assert outcome_of_errors(
        [{"extensions": {"code": "FORBIDDEN"}}, {"extensions": {"code": "INTERNAL"}}]
    ) == ("FORBIDDEN")


async def test_shed_and_refused_requests(database_url: str, held: Blocked) -> None:
    async with open_gateway(
        database_url,
        max_concurrent_operations=1,
        max_queued_operations=0,
        max_body_bytes=2048,
        max_query_depth=3,
    ) as gw:
        await seed_days(gw.db, day(0), day(1))
        before = await scrape(gw)
        running = asyncio.create_task(totals_of(gw, 0))
        await until(lambda: held.started == [day(0)])
        shed = await totals_of(gw, 1)
        held.gate.set()
        assert (await running).status_code == 200
        too_large = await gw.client.post(
            "/graphql",
            content=b'{"query": "' + b" " * 4096 + b'{ viewer { id } }"}',
            headers={"Authorization": f"Bearer {gw.admin}", "Content-Type": "application/json"},
        )
        too_deep = await gw.post(
            'query Deep { usage(filter: {from: "2026-01-01", to: "2026-01-01"}) '
            "{ byUser(first: 1) { nodes { metrics { spend } } } } }"
        )
        after = await scrape(gw)
    assert shed.status_code == 503
    assert too_large.status_code == 413
    assert too_deep.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert labelled(changes(before, after, REQUESTS), REQUESTS) == {
        key(operation="anonymous", outcome="ok"): 1,
        key(operation="unknown", outcome="overloaded"): 1,  # never validated: shed before GraphQL ran
        key(operation="unknown", outcome="refused"): 1,
        key(operation="unknown", outcome="QUERY_TOO_COMPLEX"): 1,  # a limit refuses it in validation
    }


async def test_rate_limited_requests(database_url: str, redis_url: str) -> None:
    async with open_gateway(database_url, redis_url, rate_limit_cost=0) as gw:
        await seed_days(gw.db, day(0), day(0))
        cost = (await totals_of(gw, 0)).json()["extensions"]["cost"]["requested"]
    async with open_gateway(database_url, redis_url, rate_limit_cost=cost) as gw:  # one request's worth
        before = await scrape(gw)
        answers = [await totals_of(gw, 0) for _ in range(2)]
        after = await scrape(gw)
    assert [a.status_code for a in answers] == [200, 429]
    assert labelled(changes(before, after, REQUESTS), REQUESTS) == {
        key(operation="anonymous", outcome="ok"): 1,
        key(operation="anonymous", outcome="RATE_LIMITED"): 1,
    }


async def test_a_client_cannot_grow_the_operation_label_past_its_bound(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        await seed_days(gw.db, day(0), day(0))
        before = await scrape(gw)
        for n in range(60):
            response = await gw.post(f"query Name{n} {{ viewer {{ id }} }}")
            assert response.status_code == 200
        after = await scrape(gw)
    moved = labelled(changes(before, after, REQUESTS), REQUESTS)
    # This view had seen no names before: 50 get their own series, the other 10 share one.
    assert len(moved) == 51
    assert moved[key(operation="other", outcome="ok")] == 10
    assert sum(moved.values()) == 60


async def test_an_unhandled_error_is_counted_internal(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    async with open_gateway(database_url) as gw:
        before = await scrape(gw)
        monkeypatch.setattr(GraphQLView, "_context", broken)
        with pytest.raises(RuntimeError, match="a bug"):  # the test client re-raises what the app raised
            await gw.post("query Boom { viewer { id } }")
        after = await scrape(gw)
    assert labelled(changes(before, after, REQUESTS), REQUESTS) == {
        key(operation="unknown", outcome="INTERNAL"): 1
    }
