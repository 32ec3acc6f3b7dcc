"""A ``/user/daily/activity`` page as decoded: only what the split reads, straight into typed structs.

A 1000-row page is 4–5 MB of JSON, every row repeated in seven breakdowns with eighteen metrics each.
Decoding it to dicts (orjson) and then picking fields costs 20 ms of CPU a page; msgspec decodes into
these structs in a quarter of that, skipping the fields nobody reads (metadata of buckets, savings)
without building them. Model groups, endpoints and MCP servers are read for their own facts (migration
0009): only their per-key metrics. Fields LiteLLM always sends are required, as
the dict-reading code required them; key metadata is optional, as LiteLLM leaves it out for unknown keys.
"""

from __future__ import annotations

import msgspec

from usage_gateway.datasources.litellm.day_metrics import NAMES


class SentMetrics(msgspec.Struct, gc=False):
    """SpendMetrics as sent, in DayMetrics' field order; spend still the double LiteLLM summed."""

    spend: float
    prompt_tokens: int
    completion_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    total_tokens: int
    api_requests: int
    successful_requests: int
    failed_requests: int
    total_response_time_ms: int
    timed_requests: int


assert SentMetrics.__struct_fields__ == NAMES, "SentMetrics must list DayMetrics' fields in order"


class KeyMetadata(msgspec.Struct, frozen=True, gc=False):
    key_alias: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    key_exists: bool | None = None


class KeyEntry(msgspec.Struct, gc=False):
    """One key's part of a bucket (an ``api_key_breakdown`` entry)."""

    metrics: SentMetrics


class KeyTotal(msgspec.Struct, gc=False):
    """One key's day on the page (a ``breakdown.api_keys`` entry)."""

    metrics: SentMetrics
    metadata: KeyMetadata = KeyMetadata()


class Bucket(msgspec.Struct):
    api_key_breakdown: dict[str, KeyEntry]


class Breakdown(msgspec.Struct):
    models: dict[str, Bucket]
    providers: dict[str, Bucket]
    api_keys: dict[str, KeyTotal]
    entities: dict[str, Bucket]
    # Rolled up on their own (never crossed with users, models or providers), each with per-key parts.
    model_groups: dict[str, Bucket]
    endpoints: dict[str, Bucket]
    mcp_servers: dict[str, Bucket]


class SentDay(msgspec.Struct):
    date: str
    breakdown: Breakdown


class PageMetadata(msgspec.Struct):
    total_pages: int


class ActivityPage(msgspec.Struct):
    results: list[SentDay]
    metadata: PageMetadata


decoder = msgspec.json.Decoder(ActivityPage)
