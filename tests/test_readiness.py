"""``/readyz`` names the dependency that stopped answering, and is 503 only for Postgres: a Redis and a
Postgres of the test's own, stopped while the gateway runs (the suite's shared servers are left alone)."""

from __future__ import annotations

from typing import Any

from tests.api_client import open_gateway
from usage_gateway.devtools.local_services import running_postgres, running_redis


def _ready(body: dict[str, Any], *names: str) -> None:
    assert body == {"ready": True, "failing": [], "checks": {name: {"ok": True} for name in names}}


async def test_a_stopped_redis_is_named(database_url: str) -> None:
    with running_redis() as redis:
        async with open_gateway(database_url, redis.url) as gw:
            response = await gw.client.get("/readyz")
            assert response.status_code == 200
            _ready(response.json(), "postgres", "redis")
            redis.stop()
            response = await gw.client.get("/readyz")
    # Named, but still ready: requests are answered through Postgres, and every replica shares Redis.
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["failing"] == ["redis"]
    assert body["checks"]["postgres"] == {"ok": True}
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]


async def test_a_stopped_postgres_is_named(redis_url: str) -> None:
    with running_postgres() as postgres:
        async with open_gateway(postgres.url, redis_url) as gw:
            response = await gw.client.get("/readyz")
            assert response.status_code == 200
            _ready(response.json(), "postgres", "redis")
            postgres.stop()
            response = await gw.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["failing"] == ["postgres"]
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["postgres"]["ok"] is False
    assert body["checks"]["postgres"]["error"]
