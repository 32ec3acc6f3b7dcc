"""``/healthz`` (the process answers) and ``/readyz`` (Postgres answers; Redis and LiteLLM are reported).

``/readyz`` answers ``{"ready": bool, "failing": [names], "checks": {name: {"ok": bool, "error"?}}}``:
``failing`` names the dependencies that did not answer, in the order of ``checks``, so a probe's log or
an operator's ``curl`` says at once which one to look at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response

from usage_gateway.server.resources import Resources
from usage_gateway.server.responses import OrjsonResponse

CHECK_TIMEOUT_SECONDS = 2.0
# Only Postgres makes a replica unready. Redis and LiteLLM are shared by every replica and the gateway
# answers without them (Redis: from Postgres; LiteLLM: the stored days, the rest as errors), so failing
# readiness on them would take every replica out of the load balancer at once: they are named in
# `failing` with a 200.
REQUIRED = frozenset({"postgres"})


async def healthz(_: Request) -> Response:
    return OrjsonResponse({"status": "ok"})


async def _postgres(resources: Resources) -> None:
    await resources.db.fetch_one("SELECT 1")


async def _redis(resources: Resources) -> None:
    assert resources.redis is not None
    await resources.redis.ping()


async def _litellm(resources: Resources) -> None:
    # Any HTTP answer below 500 shows LiteLLM is up; the probe path needs no key.
    url = resources.settings.litellm_url
    assert url is not None
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS) as client:
        response = await client.get(url.rstrip("/") + "/health/liveliness")
    if response.status_code >= 500:
        raise RuntimeError(f"HTTP {response.status_code}")


async def _check(probe: Callable[[Resources], Awaitable[None]], resources: Resources) -> dict[str, object]:
    try:
        await asyncio.wait_for(probe(resources), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "not ready"; the body says which
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True}


async def readiness(resources: Resources | None) -> Response:
    if resources is None:
        return OrjsonResponse({"ready": False, "failing": ["gateway"], "checks": {}}, status_code=503)
    probes: dict[str, Callable[[Resources], Awaitable[None]]] = {"postgres": _postgres}
    if resources.redis is not None:
        probes["redis"] = _redis
    if resources.settings.litellm_url is not None:
        probes["litellm"] = _litellm
    results = await asyncio.gather(*(_check(probe, resources) for probe in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    failing = [name for name, result in checks.items() if not result["ok"]]
    ready = not set(failing) & REQUIRED
    body = {"ready": ready, "failing": failing, "checks": checks}
    return OrjsonResponse(body, status_code=200 if ready else 503)
