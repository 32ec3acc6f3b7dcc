"""The activity pages as the client decodes them (datasources/litellm/wire.py): only the fields the split
reads, exactly; a body of the wrong shape is LiteLLM answering wrong, not a transient failure. And the
DayMetrics arithmetic the split relies on, now that it is a named tuple."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.errors import UpstreamUnavailable

KEY = "a" * 64
DAY = date(2026, 11, 20)


def _metrics(spend: Any, requests: int) -> dict[str, Any]:
    counters = dict.fromkeys(
        (
            "prompt_tokens",
            "completion_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "total_tokens",
            "successful_requests",
            "failed_requests",
            "total_response_time_ms",
            "timed_requests",
        ),
        requests,
    )
    # Fields the gateway never reads, which the decoder must skip.
    return {
        "spend": spend,
        "flat_cost": 0.0,
        "compression_saved_tokens": 0,
        "api_requests": requests,
        **counters,
    }


def _page(spend: Any, *, drop: str | None = None) -> dict[str, Any]:
    entry = {
        "metrics": _metrics(spend, 3),
        "metadata": {},
        "api_key_breakdown": {KEY: {"metrics": _metrics(spend, 3)}},
    }
    breakdown: dict[str, Any] = {
        "mcp_servers": {},
        "models": {"gpt-4o": entry},
        "model_groups": {"gpt-4o": entry},
        "providers": {"openai": entry},
        "endpoints": {"/chat/completions": entry},
        "api_keys": {KEY: {"metrics": _metrics(spend, 3), "metadata": {"key_alias": "k", "extra": [1, 2]}}},
        "entities": {"alice": entry},
        "guardrails": {},
    }
    if drop is not None:
        del breakdown[drop]
    day = {"date": DAY.isoformat(), "metrics": _metrics(spend, 3), "breakdown": breakdown}
    return {"results": [day], "metadata": {"total_pages": 1, "page": 1, "has_more": False}}


async def _read(body: dict[str, Any]) -> tuple[dict[date, Any], int]:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, content=orjson.dumps(body))

    async with LiteLLMClient(
        "http://litellm", "sk", transport=httpx.MockTransport(answer), backoff_seconds=0
    ) as c:
        return await c.daily_activity(DAY, DAY), calls


@pytest.mark.parametrize(
    ("sent", "exact"), [(0.1 + 0.2, "0.30000000000000004"), (5, "5.0"), (1e-05, "0.00001")]
)
async def test_spend_is_the_decimal_of_the_double_sent_and_unread_fields_are_skipped(
    sent: Any, exact: str
) -> None:
    days, _ = await _read(_page(sent))
    activity = days[DAY].keys[KEY]
    assert activity.total == DayMetrics(Decimal(exact), 3, 3, 3, 3, 3, 3, 3, 3, 3, 3)
    assert activity.split("user") == [("alice", activity.total)]
    assert days[DAY].key_metadata[KEY].key_alias == "k"
    assert days[DAY].key_metadata[KEY].team_id is None


async def test_a_body_of_the_wrong_shape_is_unavailable_at_once_not_retried() -> None:
    with pytest.raises(UpstreamUnavailable, match="unexpected body"):
        await _read(_page(0.5, drop="entities"))
    with pytest.raises(UpstreamUnavailable, match="unexpected body"):
        await _read({"results": [{"date": "20-11-2026", "breakdown": _page(0.5)["results"][0]["breakdown"]}]})


def test_day_metrics_add_and_subtract_field_by_field() -> None:
    one = DayMetrics(Decimal("0.1"), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    two = one + one
    assert two == DayMetrics(Decimal("0.2"), 2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
    assert len(two) == len(DayMetrics._fields)
    assert two - one == one
    assert sum([one, one], DayMetrics()) == two
    assert DayMetrics().is_zero()
    assert not one.is_zero()
    assert (DayMetrics() - one).counters_negative()
