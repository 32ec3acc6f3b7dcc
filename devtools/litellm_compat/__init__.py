"""A LiteLLM-compatible HTTP server (LiteLLM 1.109.1) for tests, the demo and benchmarks.

It answers ``/user/daily/activity`` (+ ``/aggregated``), ``/key/list``, ``/user/list`` and the
liveness probe ``/health/liveliness`` from an in-memory :class:`LiteLLMStore` exactly as LiteLLM does
over the same database rows, and can inject faults (:class:`Faults`).
"""

from usage_gateway.devtools.litellm_compat.app import create_litellm_app, running_litellm
from usage_gateway.devtools.litellm_compat.faults import Faults
from usage_gateway.devtools.litellm_compat.store import (
    MASTER_KEY,
    ROW_COLUMNS,
    LiteLLMStore,
    RequestRecord,
    normalize_row,
)
from usage_gateway.devtools.litellm_compat.view import api_key_bucket, api_key_from_bucket, hash_token

__all__ = [
    "MASTER_KEY",
    "ROW_COLUMNS",
    "Faults",
    "LiteLLMStore",
    "RequestRecord",
    "api_key_bucket",
    "api_key_from_bucket",
    "create_litellm_app",
    "hash_token",
    "normalize_row",
    "running_litellm",
]
