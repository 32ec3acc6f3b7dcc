"""The demo's ``LiteLLM_DailyTagSpend`` rows, derived from its user rows so the two tables agree.

LiteLLM tags every request with ``User-Agent:<product>`` and ``User-Agent:<full user agent>`` by default,
plus any tags the caller sets; each tag of a request adds its numbers to that tag's row. Here each
(key, model) pair is used through one client (Claude Code, the OpenAI Python SDK, python-requests or
curl), chosen from a hash of the key, model and seed, and some keys also tag every request with an app
tag. A user row's numbers are therefore copied once per tag of its cell, and cells that differ only in
their LiteLLM user (the table has no user column) are added together. Same rows and seed, same tag rows.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

CLIENTS: tuple[tuple[str, str], ...] = (
    ("claude-code", "claude-code/1.0.83"),
    ("openai-python", "OpenAI/Python 1.99.1"),
    ("python-requests", "python-requests/2.32.3"),
    ("curl", "curl/8.5.0"),
)
_CLIENT_WEIGHTS = (35, 30, 25, 10)  # out of 100
APP_TAGS: tuple[str, ...] = ("app:support-bot", "app:docs-search", "app:nightly-batch")
_APP_SHARE = 30  # percent of keys that tag their requests with an app tag
_SUMMED = (
    "prompt_tokens", "completion_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "compression_saved_tokens", "compression_savings_spend", "prompt_caching_savings_spend",
    "gateway_injected_caching_savings_spend", "autorouter_savings_spend", "spend", "api_requests",
    "successful_requests", "failed_requests", "total_response_time_ms", "timed_requests",
)  # fmt: skip
_CELL = ("date", "api_key", "model", "custom_llm_provider", "mcp_namespaced_tool_name", "endpoint")


def _draw(*parts: object) -> int:
    """A number in 0..99 fixed by ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100


def tags_of(seed: int, api_key: str, model: str | None) -> tuple[str, ...]:
    """The tags every request of this key on this model carries."""
    draw, bound = _draw(seed, "client", api_key, model), 0
    product, agent = CLIENTS[-1]
    for (name, full), weight in zip(CLIENTS, _CLIENT_WEIGHTS, strict=True):
        bound += weight
        if draw < bound:
            product, agent = name, full
            break
    tags = [f"User-Agent:{product}", f"User-Agent:{agent}"]
    if _draw(seed, "app", api_key) < _APP_SHARE:
        tags.append(APP_TAGS[_draw(seed, "which-app", api_key) % len(APP_TAGS)])
    return tuple(tags)


def tag_rows(rows: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """One row per (tag, date, key, model, provider, MCP tool, endpoint), as LiteLLM's upsert keeps them."""
    cells: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        for tag in tags_of(seed, row["api_key"], row["model"]):
            cell = (tag, *(row[column] for column in _CELL))
            found = cells.get(cell)
            if found is None:
                ident = uuid.UUID(bytes=hashlib.sha256(repr((seed, cell)).encode()).digest()[:16])
                cells[cell] = {
                    "id": str(ident), "tag": tag, "request_id": None,
                    **{name: value for name, value in row.items() if name not in ("id", "user_id")},
                }  # fmt: skip
            else:
                for column in _SUMMED:
                    found[column] = found[column] + row[column]
                found["updated_at"] = max(found["updated_at"], row["updated_at"])
    return list(cells.values())
