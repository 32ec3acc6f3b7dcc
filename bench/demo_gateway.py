"""The demo data set behind a gateway in this process, for the benchmarks that answer questions on it.

:func:`run_on_demo` starts a private PostgreSQL and the LiteLLM-compatible server with the demo data set as
``make demo`` does (directory, teams and budgets filled as the demo fills them) and runs a measurement on
the demo's clock (today, 12:00 UTC); :func:`demo_client` opens the gateway there (answer cache off) with
an admin token, and :func:`ask` times one ``usage`` query.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from datetime import time as clock_time
from typing import Any

import httpx
import structlog

from usage_gateway.devtools.demo import fill_directory
from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "bench-secret-" + "0123456789abcdef" * 4
Measure = Callable[[str, str, datetime], Coroutine[Any, Any, None]]


@asynccontextmanager
async def demo_client(
    database_url: str, litellm_url: str, now: datetime
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTP client of the gateway (in this process, its clock at ``now``) and an admin token."""
    settings = Settings(
        database_url=database_url,
        litellm_url=litellm_url,
        litellm_master_key=MASTER_KEY,
        jwt_secret=SECRET,
        answer_cache_ttl_seconds=0,
        rate_limit_cost=0,
    )
    resources = await Resources.open(settings, clock=lambda: now)
    app = create_app(resources.settings, resources=resources)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            yield http, issue_token(SECRET, "bench", [Role.ADMIN])
    finally:
        await resources.close()


async def ask(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> tuple[float, Any]:
    """(milliseconds, ``data.usage``) of one query; an error answer raises."""
    began = time.perf_counter()
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    ms = (time.perf_counter() - began) * 1000
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise RuntimeError(str(body)[:500])
    return ms, body["data"]["usage"]


def demo_main(measure: Measure, description: str) -> None:
    """A benchmark's command line: ``--seed`` of the demo data set, then :func:`run_on_demo`."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    run_on_demo(measure, parser.parse_args().seed)


def run_on_demo(measure: Measure, seed: int) -> None:
    """``measure(database_url, litellm_url, now)`` on the demo data set of ``seed``, its logs quiet."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    data = generate(seed)
    now = datetime.combine(datetime.now(UTC).date(), clock_time(12), UTC)
    postgres = LocalPostgres().start()
    try:
        apply_migrations(postgres.url)
        fill_directory(postgres.url, data)
        store = LiteLLMStore(data.keys, data.users, data.rows, master_key=MASTER_KEY, tag_rows=data.tag_rows)
        store.set_teams(data.teams)
        with running_litellm(store) as litellm_url:
            asyncio.run(measure(postgres.url, litellm_url, now))
    finally:
        postgres.stop()
