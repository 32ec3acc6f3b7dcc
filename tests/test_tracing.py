"""Optional OpenTelemetry tracing (``server/tracing.py``): off unless OpenTelemetry's variables ask for it;
then ``usage-gateway serve`` sends its requests', SQL statements' and LiteLLM calls' spans to an OTLP/HTTP
collector (played here by a small receiver); without the ``[otel]`` extra the app starts all the same."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.api_client import SECRET
from tests.test_answer_cache import DAYS, RANGE, litellm, rows_for
from tests.test_metrics import ADMIN, EXPORT
from tests.test_metrics_serve import log_lines, post, serve
from usage_gateway.devtools.local_services import serving
from usage_gateway.server import tracing
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings


def test_only_the_standard_variables_turn_it_on() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert not tracing.requested({})
    assert tracing.requested(endpoint)
    assert tracing.requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.requested({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not tracing.requested({**endpoint, "OTEL_TRACES_EXPORTER": "none"})


async def test_without_the_extra_the_app_starts_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    # As if the [otel] extra were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.starlette", None)
    with structlog.testing.capture_logs() as logs:
        app = create_app(Settings(jwt_secret=SECRET))
    assert [entry["event"] for entry in logs if entry["event"].startswith("tracing.")] == [
        "tracing.unavailable"
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        assert (await client.get("/healthz")).status_code == 200


@contextmanager
def collector() -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP receiver: yields its base URL and the bodies of the trace exports it received."""
    received: list[bytes] = []
    lock = threading.Lock()

    async def traces(request: Request) -> Response:
        body = await request.body()
        with lock:
            received.append(body)
        return Response(b"", media_type="application/x-protobuf")

    with serving(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as url:
        yield url, received


def spans(bodies: list[bytes]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every span of the exports: its name, its attributes and its resource's attributes."""
    service = importlib.import_module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    found = []
    for body in bodies:
        request = service.ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    found.append((span.name, attributes, resource))
    return found


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.mark.slow
def test_serve_sends_spans_of_requests_sql_and_litellm(database_url: str, tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.instrumentation.starlette", reason="the [otel] extra")
    with (
        collector() as (collector_url, received),
        litellm(rows_for(DAYS)) as (_, litellm_url),
        serve(
            database_url,
            litellm_url,
            tmp_path,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_PYTHON_STARLETTE_EXCLUDED_URLS": "readyz",
            },
        ) as url,
    ):
        answer = post(url, RANGE)
        exported = httpx.post(
            f"{url}/graphql",
            json={"query": EXPORT, "variables": {"f": RANGE}},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while not any(name.startswith("POST /graphql") for name, _, _ in spans(received)):
            assert time.monotonic() < deadline, "no span of the request reached the collector"
            time.sleep(0.1)
        time.sleep(0.5)  # the batch of the request's last spans
        found = spans(received)
        lines = log_lines(tmp_path)
    assert answer.status_code == 200
    assert answer.json()["data"]["usage"]["totals"]["requests"] > 0, answer.text
    assert [line["event"] for line in lines if line["event"].startswith("tracing.")] == ["tracing.on"]
    assert {resource["service.name"] for _, _, resource in found} == {"usage-gateway"}
    names = [name for name, _, _ in found]
    assert not any("readyz" in name for name in names)
    sql = [attributes for _, attributes, _ in found if attributes.get("db.system") == "postgresql"]
    assert sql, names
    urls = [str(attributes.get("http.url", attributes.get("url.full", ""))) for _, attributes, _ in found]
    assert any("/user/daily/activity" in called for called in urls), found
    # Traced connections still stream COPY: an export under tracing completes.
    assert exported.json()["data"]["exportUsage"]["status"] == "DONE", exported.text
