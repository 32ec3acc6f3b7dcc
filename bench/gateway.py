"""The gateway's ASGI app in this process, on a given database and Redis, timed per request (server time:
no network, no uvicorn). Unless given a LiteLLM, its day cache serves the stored days, as a warm gateway
does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from usage_gateway.datasources.daycache.days import Clock
from usage_gateway.datasources.db import Params, Query, count_statements
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "bench-secret-" + "0123456789abcdef" * 4
# What the benchmarks change from the defaults: many clients repeat one large query, so the per-user rate
# limit (which would answer 429) is off and the cost limit is lifted; everything else is the default.
# Admission control keeps its slots but never sheds: the load figures time every request, queueing
# included (the shedding figures set their own admission).
OVERRIDES: dict[str, Any] = {
    "rate_limit_cost": 0,
    "max_query_cost": 10_000_000,
    "max_queued_operations": 100_000,
    "max_queue_wait_seconds": 3600,
}


def pinned_clock(last_day: date) -> Clock:
    """A clock three days after the data set's last day: every day in it is closed, whatever today is."""
    now = datetime.combine(last_day + timedelta(days=3), datetime.min.time(), UTC)
    return lambda: now


class BenchError(RuntimeError):
    """The gateway did not answer as a benchmark requires."""


@dataclass(frozen=True)
class Answer:
    ms: float
    data: dict[str, Any]
    error_codes: tuple[str, ...]
    cache: str  # X-Answer-Cache: hit, miss or bypass


@dataclass
class BenchGateway:
    http: httpx.AsyncClient
    resources: Resources
    token: str

    async def ask(
        self,
        query: str,
        variables: dict[str, Any],
        *,
        allowed_errors: Collection[str] = (),
        token: str | None = None,
    ) -> Answer:
        """One POST /graphql, timed, with the admin token unless given another; any error but those with
        an allowed code fails the benchmark."""
        began = time.perf_counter()
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=600,
        )
        ms = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise BenchError(f"HTTP {response.status_code}: {response.text[:500]}")
        body = response.json()
        codes = tuple(str(error.get("extensions", {}).get("code")) for error in body.get("errors", []))
        unexpected = [code for code in codes if code not in allowed_errors]
        if unexpected or body.get("data") is None:
            raise BenchError(f"errors {unexpected}: {str(body.get('errors'))[:500]}")
        return Answer(ms, body["data"], codes, response.headers.get("X-Answer-Cache", ""))

    async def recorded(
        self, query: str, variables: dict[str, Any], *, allowed_errors: Collection[str] = ()
    ) -> tuple[Answer, list[tuple[Query, Params]]]:
        """One request and the SQL statements it ran, with their parameters."""
        with count_statements(record=True) as counter:
            answer = await self.ask(query, variables, allowed_errors=allowed_errors)
        assert counter.recorded is not None
        return answer, counter.recorded


@asynccontextmanager
async def open_gateway(
    database_url: str, redis_url: str, last_day: date, *, answer_cache: bool, **settings: Any
) -> AsyncIterator[BenchGateway]:
    """The app as the server opens it (``Resources.open``) with the default settings but
    :data:`OVERRIDES` and ``settings``, the answer cache on or off, on a clock that has every day of the
    data set closed. Without a ``litellm_url`` it serves the stored days, as a warm gateway does."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret": SECRET,
        "litellm_url": None,
        "answer_cache_ttl_seconds": 300 if answer_cache else 0,
        **OVERRIDES,
        **settings,
    }
    resources = await Resources.open(Settings(**values), clock=pinned_clock(last_day))
    app = create_app(resources.settings, resources=resources)
    token = issue_token(SECRET, "bench", [Role.ADMIN])
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as http:
            yield BenchGateway(http, resources, token)
    finally:
        await resources.close()
