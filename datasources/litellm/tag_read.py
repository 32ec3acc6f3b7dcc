"""Read a batch of days of ``/tag/daily/activity`` as exact (tag × api key × model × provider) facts.

LiteLLM's tag table has one row per (tag, date, key, model, provider, MCP tool, endpoint); its answer
rolls a day up by tag (``entities``), by model and by provider, each with a per-key breakdown, never
crossed (CONTRACT §2.6, §4). A ``tags=<tag>`` query pins the tag, so within it a key's cells are
determined when the key has one model or one provider on that day; otherwise ``tags=<tag>&model=<m>``
pins the model too, and the key's providers in that answer are its exact cells. ``model=`` also matches
rows without a model when it is ``unknown-model``, as on the user route.

Verification: one ``/tag/daily/activity/aggregated`` request gives every date's total per tag; the facts
of each (date, tag) must add up to it. Rows whose tag is NULL (LiteLLM's ``Unassigned`` entity) cannot be
selected by ``tags=`` and are left out of both; a tag containing ``,`` cannot be asked for alone
(LiteLLM splits ``tags`` on commas), so its days are reported unverified rather than guessed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from usage_gateway.datasources.litellm.client import (
    DayActivity,
    KeyActivity,
    LiteLLMClient,
    _decode_page,
    _merge_page,
    gather_all,
)
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.datasources.litellm.split import UNASSIGNED, BatchRead, Fact
from usage_gateway.errors import UpstreamUnavailable

TAG_ACTIVITY = "/tag/daily/activity"
TAG_AGGREGATED = "/tag/daily/activity/aggregated"


@dataclass
class TagBatchRead(BatchRead):
    """A batch of tag days as read. ``facts`` hold the tag where user facts hold the LiteLLM user
    (``Fact.litellm_user_id``); ``expected_tags`` is LiteLLM's total per date and tag."""

    expected_tags: dict[date, dict[str, DayMetrics]] = field(default_factory=dict)

    def mismatch(self, day: date) -> str | None:
        if day in self.unsettled:
            return self.unsettled[day]
        got: dict[str, DayMetrics] = defaultdict(DayMetrics)
        for fact in self.facts[day]:
            got[fact.litellm_user_id] += fact.metrics
        expected = self.expected_tags.get(day, {})
        off = [
            f"tag {tag!r}"
            for tag in sorted(expected.keys() | got.keys())
            if not got.get(tag, DayMetrics()).matches(expected.get(tag, DayMetrics()))
        ]
        return "; ".join(off[:5]) if off else None


async def tag_days(
    client: LiteLLMClient, start: date, end: date, tag: str, model: str | None = None
) -> dict[date, DayActivity]:
    """Every page of ``/tag/daily/activity?tags=<tag>`` (and ``model=``) over the range, merged by date;
    ``entities`` (the tags) land where the user route's users do (``KeyActivity.users``)."""
    base = {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "tags": tag,
        **({"model": model} if model is not None else {}),
        "page_size": str(client.page_size),
    }
    days: dict[date, DayActivity] = {}
    first = await client._get(TAG_ACTIVITY, {**base, "page": "1"}, _decode_page)
    _merge_page(days, first)

    async def page(number: int) -> None:
        _merge_page(days, await client._get(TAG_ACTIVITY, {**base, "page": str(number)}, _decode_page))

    await gather_all(page(number) for number in range(2, max(first.metadata.total_pages, 1) + 1))
    return days


async def tag_totals(client: LiteLLMClient, start: date, end: date) -> dict[date, dict[str, DayMetrics]]:
    """Per date, LiteLLM's total of every tag (``entities`` of the aggregated route)."""
    params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "api_key_limit": "1"}
    body = await client.get_json(TAG_AGGREGATED, params)
    try:
        return {
            date.fromisoformat(day["date"]): {
                tag: DayMetrics.from_litellm(entry["metrics"])
                for tag, entry in day["breakdown"]["entities"].items()
            }
            for day in body["results"]
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamUnavailable(f"LiteLLM {TAG_AGGREGATED} returned an unexpected body ({exc!r})") from None


def _determined(tag: str, key: str, activity: KeyActivity) -> list[Fact] | None:
    """The key's cells within one tag when one model or one provider pins them down, else None."""
    models, providers = activity.models, activity.providers
    if not (models and providers):
        return None
    if len(models) == 1:
        model = next(iter(models))
        return [Fact(key, tag, model, p, metrics) for p, metrics in activity.split("provider")]
    if len(providers) == 1:
        provider = next(iter(providers))
        return [Fact(key, tag, m, provider, metrics) for m, metrics in activity.split("model")]
    return None


async def read_tag_days(client: LiteLLMClient, days: Sequence[date]) -> TagBatchRead:
    """Read these dates (sorted): one aggregated request, one ``tags=`` query per tag over the dates that
    list it, and one ``tags=&model=`` query per (tag, model) a key needs to be narrowed by."""
    wanted = set(days)
    totals = await tag_totals(client, days[0], days[-1])
    expected_tags = {
        when: {tag: m for tag, m in totals.get(when, {}).items() if tag != UNASSIGNED} for when in days
    }
    read = TagBatchRead(
        expected={when: sum(expected_tags[when].values(), DayMetrics()) for when in days},
        expected_models={when: {} for when in days},
        facts={when: [] for when in days},
        keys={when: {} for when in days},
        expected_tags=expected_tags,
    )
    spans: dict[str, tuple[date, date]] = {}
    for when in days:
        for tag in expected_tags[when]:
            first, last = spans.get(tag, (when, when))
            spans[tag] = (min(first, when), max(last, when))
    read.models = len(spans)
    at_once = asyncio.Semaphore(2 * client.concurrency)

    async def one_tag(tag: str, first: date, last: date) -> None:
        if "," in tag:
            for when in days:
                if tag in expected_tags[when]:
                    read.unsettled[when] = f"tag {tag!r} has a comma: LiteLLM cannot be asked for it alone"
            return
        async with at_once:
            activity = await tag_days(client, first, last, tag)
        narrow: dict[str, list[tuple[date, str, KeyActivity]]] = defaultdict(list)
        for when, day in activity.items():
            if when not in wanted:
                continue
            for key, key_activity in day.keys.items():
                found = _determined(tag, key, key_activity)
                if found is not None:
                    read.facts[when].extend(found)
                    continue
                for model in key_activity.models:
                    narrow[model].append((when, key, key_activity))
        for model, needs in narrow.items():
            dates = [when for when, _, _ in needs]
            async with at_once:
                narrowed = await tag_days(client, min(dates), max(dates), tag, model)
            read.narrowings += 1
            for when, key, key_activity in needs:
                cell = narrowed.get(when)
                part = cell.keys.get(key) if cell is not None else None
                want = dict(key_activity.split("model")).get(model, DayMetrics())
                if part is None or not part.total.matches(want):
                    read.unsettled[when] = (
                        f"tag {tag!r}, key {key[:12]}… on {model!r} changed between requests"
                    )
                    continue
                read.facts[when].extend(Fact(key, tag, model, p, m) for p, m in part.split("provider"))

    await gather_all(one_tag(tag, *span) for tag, span in sorted(spans.items()))
    return read
