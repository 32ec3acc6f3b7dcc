"""Optional OpenTelemetry tracing: on when OpenTelemetry's own variables ask for it and the ``[otel]``
extra is installed (``pip install 'usage-gateway[otel]'``).

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns it on: spans go over
OTLP/HTTP (protobuf) to that collector, in batches. Every request is a server span (Starlette), with a
child span per SQL statement (psycopg, statements without their parameters) and per LiteLLM or JWKS
request (httpx). The SDK reads the rest of the standard variables: ``OTEL_SERVICE_NAME`` (default here
``usage-gateway``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_PYTHON_STARLETTE_EXCLUDED_URLS`` (e.g. ``healthz,readyz,metrics``).
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keep it off.

The packages are imported by name only when asked for, so the base install neither needs nor loads them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.applications import Starlette

log = structlog.get_logger("usage_gateway.tracing")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "usage-gateway"

_state: dict[str, Any] = {}  # the process's tracer provider, once made: instrumentation is process-wide


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether OpenTelemetry's variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _modules() -> dict[str, Any] | None:
    names = {
        "trace": "opentelemetry.trace",
        "resources": "opentelemetry.sdk.resources",
        "sdk": "opentelemetry.sdk.trace",
        "export": "opentelemetry.sdk.trace.export",
        "otlp": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "starlette": "opentelemetry.instrumentation.starlette",
        "psycopg": "opentelemetry.instrumentation.psycopg",
        "httpx": "opentelemetry.instrumentation.httpx",
    }
    try:
        return {key: importlib.import_module(name) for key, name in names.items()}
    except ImportError as exc:
        log.warning(
            "tracing.unavailable",
            error=str(exc),
            effect="OTEL_EXPORTER_OTLP_ENDPOINT is set but the [otel] extra is not installed: no traces;"
            " pip install 'usage-gateway[otel]'",
        )
        return None


def instrument(app: Starlette) -> bool:
    """Trace ``app``'s requests, and this process's SQL and HTTP clients, when asked for; whether it is."""
    if not requested():
        return False
    otel = _modules()
    if otel is None:
        return False
    if "provider" not in _state:
        attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME}
        resource = otel["resources"].Resource.create(attributes)
        provider = otel["sdk"].TracerProvider(resource=resource)
        provider.add_span_processor(otel["export"].BatchSpanProcessor(otel["otlp"].OTLPSpanExporter()))
        otel["trace"].set_tracer_provider(provider)
        otel["psycopg"].PsycopgInstrumentor().instrument(tracer_provider=provider)
        otel["httpx"].HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        _state["provider"] = provider
        log.info("tracing.on", endpoint=next(os.environ[n] for n in ENDPOINT_VARIABLES if os.environ.get(n)))
    otel["starlette"].StarletteInstrumentor.instrument_app(app, tracer_provider=_state["provider"])
    return True
