"""The HTTP surface: GraphiQL only when enabled, POST only for queries, health and readiness."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from tests.api_client import SECRET, open_gateway
from usage_gateway.devtools.local_services import free_port
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings


async def test_graphiql_is_served_on_get_when_enabled(database_url: str) -> None:
    async with open_gateway(database_url, graphiql=True) as gw:
        response = await gw.client.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()
        # Introspection comes with GraphiQL.
        data = await gw.data("{ __schema { queryType { name } } }")
        assert data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_no_graphiql_and_no_introspection_by_default(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        response = await gw.client.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == 405
        assert "graphiql" not in response.text.lower()
        body = await gw.query("{ __schema { queryType { name } } }")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_introspection_can_be_enabled_alone(database_url: str) -> None:
    async with open_gateway(database_url, introspection=True) as gw:
        assert await gw.data("{ __typename }") == {"__typename": "Query"}
        assert await gw.data("{ __schema { queryType { name } } }") == {
            "__schema": {"queryType": {"name": "Query"}}
        }


async def test_queries_are_not_served_on_get(database_url: str) -> None:
    async with open_gateway(database_url, graphiql=True) as gw:
        response = await gw.client.get(
            "/graphql", params={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {gw.admin}"}
        )
        assert response.status_code == 405


async def test_unparsable_body_is_400_not_500(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        headers = {"Authorization": f"Bearer {gw.admin}", "Content-Type": "application/json"}
        response = await gw.client.post("/graphql", content=b"{not json", headers=headers)
        assert response.status_code == 400


async def test_request_id_is_echoed(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        headers = {"Authorization": f"Bearer {gw.admin}", "X-Request-ID": "abc-123"}
        response = await gw.client.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
        assert response.headers["x-request-id"] == "abc-123"


async def test_healthz_and_readyz(database_url: str, redis_url: str) -> None:
    async with open_gateway(database_url, redis_url) as gw:
        assert (await gw.client.get("/healthz")).json() == {"status": "ok"}
        response = await gw.client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {
            "ready": True,
            "failing": [],
            "checks": {"postgres": {"ok": True}, "redis": {"ok": True}},
        }


async def test_readyz_names_an_unreachable_litellm_but_stays_ready(database_url: str) -> None:
    async with open_gateway(database_url, litellm_url=f"http://127.0.0.1:{free_port()}") as gw:
        response = await gw.client.get("/readyz")
        assert response.status_code == 200  # stored days are still answered; every replica shares LiteLLM
        assert response.json()["ready"] is True
        checks = response.json()["checks"]
        assert checks["postgres"] == {"ok": True}
        assert checks["litellm"]["ok"] is False
        assert response.json()["failing"] == ["litellm"]


async def test_lifespan_opens_and_closes_the_resources(database_url: str, redis_url: str) -> None:
    settings = Settings(database_url=database_url, redis_url=redis_url, jwt_secret=SECRET)
    app: Starlette = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://g") as client,
    ):
        response = await client.get("/readyz")
        assert response.status_code == 200
    response = await httpx.AsyncClient(transport=transport, base_url="http://g").get("/readyz")
    assert response.status_code == 503
