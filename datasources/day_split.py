"""Read a batch of days from LiteLLM as exact (api key × LiteLLM user × model × provider) facts.

LiteLLM's day rolls the same rows up three separate ways — by model, by provider, by user (entity) —
each with a per-key breakdown, but never crossed (CONTRACT §2.6). For one key the cross is determined
whenever at most one of the three has more than one value; server-side filters pin the rest down:
``model=`` is exact, and within one model a key is determined unless it spans several users *and* several
providers, where ``model=&user_id=`` fixes the user too (LiteLLM's ``Unassigned`` user is ``user_id=``
empty, which LiteLLM matches against the empty owner its writer records).

So a batch is read model by model, not day by day: one ``/aggregated`` request gives every date's totals
(to verify against) and its complete list of model buckets, then each model is paged with ``model=`` over
the batch's span. ``model=unknown-model`` also matches rows without a model (CONTRACT §2.1), so the
per-model queries together return every row exactly once: a batch costs about the pages of its rows plus
one request, where narrowing unfiltered days cost a request per model involved, per day. Providers are
never guessed from a model's name, and nothing is inferred by subtraction; a cell that cannot be pinned
down shows up as a mismatch in its day's verification.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from datasources.litellm import (
    DayActivity,
    DayQuery,
    KeyActivity,
    KeyMetadata,
    LiteLLMClient,
    gather_all,
)
from datasources.metrics import DayMetrics

UNASSIGNED = "Unassigned"

FetchRange = Callable[[date, date, DayQuery], Coroutine[Any, Any, dict[date, DayActivity]]]


class Fact(NamedTuple):
    api_key: str
    litellm_user_id: str
    model: str
    provider: str
    metrics: DayMetrics


def _determined(key: str, activity: KeyActivity) -> list[Fact] | None:
    """The key's facts if its day pins them down — at most one of user, model and provider has several
    values — else None (needs a narrower query). Runs once per key and day: kept lean."""
    users, models, providers = activity.users, activity.models, activity.providers
    if not (users and models and providers):
        return None
    user, model, provider = next(iter(users)), next(iter(models)), next(iter(providers))
    if len(users) == len(models) == len(providers) == 1:
        return [Fact(key, user, model, provider, activity.total)]
    if len(models) == len(providers) == 1:
        return [Fact(key, u, model, provider, metrics) for u, metrics in activity.split("user")]
    if len(users) == len(providers) == 1:
        return [Fact(key, user, m, provider, metrics) for m, metrics in activity.split("model")]
    if len(users) == len(models) == 1:
        return [Fact(key, user, model, p, metrics) for p, metrics in activity.split("provider")]
    return None


@dataclass
class ModelSplit:
    facts: dict[date, list[Fact]]
    narrowings: int


async def split_model(model: str, days: Mapping[date, DayActivity], fetch: FetchRange) -> ModelSplit:
    """Facts of one model's days (each the answer of a ``model=`` query).

    A key that still spans several users and providers is narrowed with ``model=&user_id=``: one query per
    user involved, over the dates that need it.
    """
    facts: dict[date, list[Fact]] = {when: [] for when in days}
    undetermined: dict[str, list[tuple[date, str]]] = defaultdict(list)
    for when, day in days.items():
        for key, activity in day.keys.items():
            found = _determined(key, activity)
            if found is not None:
                facts[when].extend(found)
                continue
            for user in activity.users:
                undetermined[user].append((when, key))
    if not undetermined:
        return ModelSplit(facts, 0)

    users = sorted(undetermined)
    by_user = await gather_all(
        fetch(
            min(when for when, _ in undetermined[user]),
            max(when for when, _ in undetermined[user]),
            DayQuery(model=model, user_id=_user_filter(user)),
        )
        for user in users
    )
    for user, user_days in zip(users, by_user, strict=True):
        for when, key in undetermined[user]:
            narrowed = user_days[when].keys.get(key) if when in user_days else None
            if narrowed is not None:  # else the day moved under us: its verification will say so
                facts[when].extend(
                    Fact(key, user, model, provider, metrics)
                    for provider, metrics in narrowed.split("provider")
                )
    return ModelSplit(facts, len(users))


def _user_filter(user: str) -> str:
    return "" if user == UNASSIGNED else user


@dataclass
class BatchRead:
    """A batch of days as read: per date, the facts, the key metadata, and LiteLLM's totals to verify."""

    expected: dict[date, DayMetrics]
    facts: dict[date, list[Fact]]
    keys: dict[date, dict[str, KeyMetadata]]
    models: int = 0
    narrowings: int = 0


async def read_days(client: LiteLLMClient, days: Sequence[date]) -> BatchRead:
    """Read these dates (sorted) with one ``/aggregated`` request and one paged ``model=`` query per model.

    Each model is queried over the dates that list it, from the first to the last; dates outside ``days``
    (a gap the batch bridges) are read and dropped. Models are read twice the client's concurrency at a
    time, largest first: enough to keep every request slot busy, few enough that a batch holds its facts
    plus the merged pages of a few models rather than of all of them at once.
    """
    wanted = set(days)
    aggregated = await client.aggregated_days(days[0], days[-1])
    spans: dict[str, tuple[date, date]] = {}
    requests: Counter[str] = Counter()
    for when in days:
        for model, metrics in aggregated[when].models.items() if when in aggregated else ():
            first, last = spans.get(model, (when, when))
            spans[model] = (min(first, when), max(last, when))
            requests[model] += metrics.api_requests
    read = BatchRead(
        expected={when: aggregated[when].metrics if when in aggregated else DayMetrics() for when in days},
        facts={when: [] for when in days},
        keys={when: {} for when in days},
        models=len(spans),
    )
    del aggregated
    models_at_once = asyncio.Semaphore(2 * client.concurrency)

    async def one_model(model: str, first: date, last: date) -> None:
        async with models_at_once:
            activity = await client.daily_activity(first, last, DayQuery(model=model))
            model_days = {when: day for when, day in activity.items() if when in wanted}
            split = await split_model(model, model_days, client.daily_activity)
        for when, day in model_days.items():
            read.facts[when].extend(split.facts[when])
            read.keys[when].update(day.key_metadata)
        read.narrowings += split.narrowings

    largest_first = sorted(spans, key=lambda model: (-requests[model], model))
    await gather_all(one_model(model, *spans[model]) for model in largest_first)
    return read


def total(facts: Iterable[Fact]) -> DayMetrics:
    """The facts' sum, column by column (a day has thousands of facts)."""
    columns = zip(*(fact.metrics.as_tuple() for fact in facts), strict=True)
    return DayMetrics(*(sum(column) for column in columns))
