"""Production posture: no schema hints without introspection, and no secret in any response or log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import structlog

from tests.api_client import open_gateway
from tests.facts_data import BASE
from usage_gateway.datasources.facts.aggregates import UsageTotals
from usage_gateway.devtools.local_services import free_port
from usage_gateway.resolvers import usage as usage_resolvers
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.logs import configure_logging
from usage_gateway.server.tokens import issue_token

SERIES = (
    "query ($f: UsageFilter!, $g: Granularity!)"
    " { usage(filter: $f) { timeSeries(granularity: $g) { date } } }"
)
LITERAL = (
    '{ usage(filter: {from: "2024-01-22", to: "2024-01-22"}) { timeSeries(granularity: DAYS) { date } } }'
)
TYPOS = [
    ("{ viewr { id } }", None),
    ("{ viewer { ids } }", None),
    (
        "query ($f: UsageFilter!) { usage(filter: $f) { totls { spend } } }",
        {"f": {"from": "2024-01-22", "to": "2024-01-22"}},
    ),
    (
        "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } } }",
        {"f": {"from": "2024-01-22", "to": "2024-01-22", "userId": ["a"]}},
    ),
    (
        SERIES,
        {"f": {"from": "2024-01-22", "to": "2024-01-22"}, "g": "DAYS"},
    ),
    (
        LITERAL,
        None,
    ),
    ('{ filterOptions(frm: "2024-01-22", to: "2024-01-22") { models } }', None),
    ("query ($f: UsageFiltr!) { viewer { id } }", None),
]


@pytest.mark.parametrize(("query", "variables"), TYPOS)
async def test_no_suggestions_without_introspection(
    database_url: str, query: str, variables: dict[str, Any] | None
) -> None:
    async with open_gateway(database_url) as gw:
        body = await gw.query(query, variables)
        assert body["errors"]
        assert all(error["extensions"]["code"] == "BAD_USER_INPUT" for error in body["errors"])
        assert "Did you mean" not in str(body)
    async with open_gateway(database_url, introspection=True) as gw:
        # With introspection on, the schema is no secret: the hints help in GraphiQL.
        body = await gw.query(query, variables)
        assert "Did you mean" in str(body)


async def test_introspection_and_graphiql_are_off_by_default(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        for query in ("{ __schema { types { name } } }", '{ __type(name: "Usage") { fields { name } } }'):
            body = await gw.query(query)
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert await gw.data("{ __typename }") == {"__typename": "Query"}
        page = await gw.client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 405
    assert Settings().graphiql is False
    assert Settings().introspection is False


# --- Secrets --------------------------------------------------------------------------------------------

MASTER_KEY = "sk-master-Vq8nR2xZ7"
JWT_SECRET = "jwt-secret-Lp4mW9kT3-" + "0123456789abcdef" * 2
DB_PASSWORD = "pg-pass-Hs6dJ1yB5"  # noqa: S105  # a made-up secret the test hunts for
SECRETS = (MASTER_KEY, JWT_SECRET, DB_PASSWORD)


@pytest.fixture
def logs_to_stderr() -> Iterator[None]:
    """Leave logging as it was after a test that configures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_secrets_never_reach_a_response_or_a_log_line(
    database_url: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    logs_to_stderr: None,
) -> None:
    with_password = database_url.replace("gateway@", f"gateway:{DB_PASSWORD}@")
    settings = Settings(
        database_url=with_password,
        redis_url=redis_url,
        litellm_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: every fetch fails
        litellm_master_key=MASTER_KEY,
        litellm_retries=0,
        jwt_secret=JWT_SECRET,
        log_level="DEBUG",
    )
    configure_logging(settings)
    # Loggers cached now would keep writing to this test's captured stream after it is closed.
    structlog.configure(cache_logger_on_first_use=False)
    caplog.set_level(logging.DEBUG)

    async def leaky(ctx: Context, request: UsageRequest) -> UsageTotals:
        raise RuntimeError(f"connection {with_password} with key {MASTER_KEY} and secret {JWT_SECRET} failed")

    monkeypatch.setattr(usage_resolvers, "totals", leaky)
    app = create_app(settings)
    token = issue_token(JWT_SECRET, "root", ["admin"])
    day = BASE.isoformat()
    texts = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client,
    ):

        async def post(query: str, bearer: str = token) -> None:
            response = await client.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {bearer}"}
            )
            texts.append(f"{response.status_code} {response.headers} {response.text}")

        await post(f'{{ usage(filter: {{from: "{day}", to: "{day}"}}) {{ totals {{ spend }} }} }}')  # masked
        await post(
            f'{{ usage(filter: {{from: "{day}", to: "{day}"}}) {{ freshness {{ missingDays }} }} }}'
        )  # upstream
        await post("mutation { syncDirectory { usersCreated } }")  # upstream, audited
        await post("{ viewer { id } }", jwt.encode({"sub": "x", "roles": ["admin"], "exp": 1}, JWT_SECRET))
        await post("{ viewer { id } }", issue_token(JWT_SECRET[::-1], "root", ["admin"]))
        await post("{ viewer { id } }", JWT_SECRET)
        texts.append((await client.get("/readyz")).text)
    assert texts[0].startswith("200")
    assert "Internal error" in texts[0]
    assert "UPSTREAM_UNAVAILABLE" in texts[1]
    captured = capsys.readouterr()
    everything = "\n".join([*texts, captured.out, captured.err, caplog.text])
    assert "graphql.internal_error" in everything  # the masked error was logged …
    assert [secret for secret in SECRETS if secret in everything] == []  # … without a secret


async def test_nul_characters_are_refused_as_bad_input(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        for query, variables in (
            ("query ($id: ID!) { export(id: $id) { id } }", {"id": "a\x00b"}),
            ('{ export(id: "a\\u0000b") { id } }', None),
            (
                "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } } }",
                {"f": {"from": "2024-01-22", "to": "2024-01-22", "userIds": ["x\x00"]}},
            ),
        ):
            body = await gw.query(query, variables)
            assert body["data"] is None
            assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
            assert "NUL" in body["errors"][0]["message"]
