"""Read a batch of days from LiteLLM as exact (api key × LiteLLM user × model × provider) facts.

LiteLLM's day rolls the same rows up three separate ways — by model, by provider, by user (entity) —
each with a per-key breakdown, but never crossed (CONTRACT §2.6). For one key the cross is determined
whenever at most one of the three has more than one value; server-side filters pin the rest down:
``model=`` is exact, and within one model a key is determined unless it spans several users *and* several
providers, where ``model=&user_id=`` fixes each named user. LiteLLM's ``Unassigned`` user holds the rows
whose ``user_id`` is ``''`` or NULL, and no filter selects NULL ones (CONTRACT §5), so its cells are
found from its own total and what the named users leave of each provider (:func:`_unassigned_cells`);
where that cannot be exact, the key's rows of that model and day are read one page of one row each.

So a batch is read model by model, not day by day: one ``/aggregated`` request gives every date's totals
(to verify against) and its complete list of model buckets, then each model is paged with ``model=`` over
the batch's span. ``model=unknown-model`` also matches rows without a model (CONTRACT §2.1), so the
per-model queries together return every row exactly once: a batch costs about the pages of its rows plus
one request, where narrowing unfiltered days cost a request per model involved, per day. Providers are
never guessed from a model's name; answers that do not add up across requests mark the day as moved, and
it is read again.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from usage_gateway.datasources.litellm.client import (
    DayActivity,
    DayQuery,
    KeyActivity,
    LiteLLMClient,
    gather_all,
)
from usage_gateway.datasources.litellm.day_metrics import NAMES, DayMetrics
from usage_gateway.datasources.litellm.wire import KeyMetadata

UNASSIGNED = "Unassigned"
# LiteLLM sums spend in doubles; a difference of its sums within this share of the whole is rounding.
_NOISE = Decimal("1e-9")
# A difference of two such sums is good to 1e-9 of itself when it is at least this share of the whole:
# their rounding is under 1e-15 of the whole for any day LiteLLM can hold.
_PRECISE = Decimal("1e-6")

FetchRange = Callable[[date, date, DayQuery], Coroutine[Any, Any, dict[date, DayActivity]]]
FetchRows = Callable[[date, DayQuery], Coroutine[Any, Any, list[DayActivity]]]


class Fact(NamedTuple):
    api_key: str
    litellm_user_id: str
    model: str
    provider: str
    metrics: DayMetrics


class SideFact(NamedTuple):
    """A key's part of a model group, endpoint or MCP tool bucket, within one model (the ``model=`` query
    it was read from): LiteLLM rolls these up apart from users and providers (CONTRACT §2.6)."""

    rollup: str  # 'model_group', 'endpoint' or 'mcp_server'
    bucket: str
    api_key: str
    model: str
    metrics: DayMetrics


SIDE_NAMES = {"model_groups": "model_group", "endpoints": "endpoint", "mcp_servers": "mcp_server"}


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
    # Dates whose narrowed answers disagree with the model's own answer: the day moved between requests.
    unsettled: dict[date, str] = field(default_factory=dict)


async def split_model(
    model: str, days: Mapping[date, DayActivity], fetch: FetchRange, fetch_rows: FetchRows
) -> ModelSplit:
    """Facts of one model's days (each the answer of a ``model=`` query).

    A key that still spans several users and providers is narrowed with ``model=&user_id=``: one query per
    named user involved, over the dates that need it. LiteLLM's ``Unassigned`` user is what is left of
    each provider once the named users' cells are taken out (:func:`_unassigned_cells`).
    """
    facts: dict[date, list[Fact]] = {when: [] for when in days}
    undetermined: list[tuple[date, str, KeyActivity]] = []
    wanted: dict[str, list[date]] = defaultdict(list)
    for when, day in days.items():
        for key, activity in day.keys.items():
            found = _determined(key, activity)
            if found is not None:
                facts[when].extend(found)
                continue
            undetermined.append((when, key, activity))
            for user in activity.users:
                if user != UNASSIGNED:
                    wanted[user].append(when)
    split = ModelSplit(facts, len(wanted))
    if not undetermined:
        return split

    users = sorted(wanted)
    answers = await gather_all(
        fetch(min(wanted[user]), max(wanted[user]), DayQuery(model=model, user_id=user)) for user in users
    )
    by_user = dict(zip(users, answers, strict=True))
    row_by_row: list[tuple[date, str]] = []
    for when, key, activity in undetermined:
        cells = _narrowed_cells(when, key, model, activity, by_user)
        if cells is None:
            row_by_row.append((when, key))
        elif isinstance(cells, str):
            split.unsettled[when] = cells
        else:
            facts[when].extend(cells)
    rows = await gather_all(fetch_rows(when, DayQuery(model=model, api_key=key)) for when, key in row_by_row)
    for (when, key), key_rows in zip(row_by_row, rows, strict=True):
        split.narrowings += len(key_rows)
        cells = _cells_of_rows(when, key, key_rows)
        if isinstance(cells, str):
            split.unsettled[when] = cells
        else:
            facts[when].extend(cells)
    return split


def _cells_of_rows(when: date, key: str, rows: Sequence[DayActivity]) -> list[Fact] | str:
    """A key's cells summed from its rows, each read alone (so each one is determined)."""
    cells: dict[tuple[str, str, str], DayMetrics] = defaultdict(DayMetrics)
    for row in rows:
        found = _determined(key, row.keys[key]) if key in row.keys and row.date == when else None
        if found is None or len(found) != 1:
            return f"the rows of key {key[:12]}… on {when} changed while read one by one"
        fact = found[0]
        cells[fact.litellm_user_id, fact.model, fact.provider] += fact.metrics
    return [Fact(key, user, model, provider, m) for (user, model, provider), m in cells.items()]


def _narrowed_cells(
    when: date,
    key: str,
    model: str,
    activity: KeyActivity,
    by_user: Mapping[str, Mapping[date, DayActivity]],
) -> list[Fact] | str | None:
    """One undetermined key's cells of one model and date, why its narrowed answers do not add up, or
    None when they cannot be exact (its rows are then read one by one)."""
    named: list[Fact] = []
    for user, metrics in activity.split("user"):
        if user == UNASSIGNED:
            continue
        user_day = by_user[user].get(when)
        narrowed = user_day.keys.get(key) if user_day is not None else None
        if narrowed is None or not narrowed.total.matches(metrics):
            return f"user {user!r} of key {key[:12]}… on {model!r} changed between requests"
        named.extend(Fact(key, user, model, provider, m) for provider, m in narrowed.split("provider"))
    if UNASSIGNED not in activity.users:
        return named
    rest = _unassigned_cells(key, model, activity, named)
    return rest if rest is None or isinstance(rest, str) else named + rest


def _unassigned_cells(
    key: str, model: str, activity: KeyActivity, named: Sequence[Fact]
) -> list[Fact] | str | None:
    """The cells of LiteLLM's ``Unassigned`` user (its rows with ``user_id`` ``''`` or NULL, which no
    filter selects together): per provider, what the named users leave of the key's total.

    The rest is exact in every counter (integers). Its spend is a difference of LiteLLM's double sums,
    exact only up to their rounding, so it is used only where that rounding cannot matter:

    - rows on one provider: the cell is ``Unassigned``'s own total (LiteLLM's sum of just those rows),
      the rests only tell which provider;
    - rows on several providers: each rest, when its spend is far above the rounding of the provider's
      sum (``_PRECISE``), so off by less than 1e-9 of itself; else None: read the rows one by one.

    A rest whose counters do not add up to ``Unassigned``'s, or that goes negative beyond rounding, means
    the key's day moved between the requests: the day is read again.
    """
    unassigned = dict(activity.split("user"))[UNASSIGNED]
    named_by_provider: dict[str, DayMetrics] = defaultdict(DayMetrics)
    for fact in named:
        named_by_provider[fact.provider] += fact.metrics
    rests: dict[str, tuple[DayMetrics, DayMetrics]] = {}
    for provider, whole in activity.split("provider"):
        rest = whole - named_by_provider.pop(provider, DayMetrics())
        noise = _NOISE * abs(whole.spend)
        if rest.counters_negative() or rest.spend < -noise:
            return f"key {key[:12]}… on {model!r}/{provider!r}: named users exceed the provider's total"
        if any(rest.as_tuple()[1:]) or rest.spend > noise:
            rests[provider] = (rest, whole)
    moved = f"key {key[:12]}… on {model!r}: the named users and Unassigned do not add up"
    if (
        named_by_provider
        or sum((r for r, _ in rests.values()), DayMetrics()).as_tuple()[1:] != (unassigned.as_tuple()[1:])
    ):
        return moved
    if len(rests) == 1:
        (provider,) = rests
        return [Fact(key, UNASSIGNED, model, provider, unassigned)]
    if not rests:
        return [] if unassigned.is_zero() else None
    if any(abs(rest.spend) < _PRECISE * abs(whole.spend) for rest, whole in rests.values()):
        return None
    return [Fact(key, UNASSIGNED, model, provider, rest) for provider, (rest, _) in rests.items()]


@dataclass
class BatchRead:
    """A batch of days as read: per date, the facts, the key metadata, and LiteLLM's totals to verify."""

    expected: dict[date, DayMetrics]
    expected_models: dict[date, dict[str, DayMetrics]]
    facts: dict[date, list[Fact]]
    keys: dict[date, dict[str, KeyMetadata]]
    side: dict[date, list[SideFact]] = field(default_factory=dict)
    models: int = 0
    narrowings: int = 0
    unsettled: dict[date, str] = field(default_factory=dict)

    def mismatch(self, day: date) -> str | None:
        """Why the day's facts are not LiteLLM's day, or None when they add up to its totals."""
        if day in self.unsettled:
            return self.unsettled[day]
        got = total(self.facts[day])
        if got.matches(self.expected[day]):
            # Every row has a model group: the groups' parts add up to the day as the facts do.
            groups = total(s for s in self.side.get(day, ()) if s.rollup == "model_group")
            if groups.matches(got):
                return None
            return f"model groups {_shortfall(got, groups)}"
        by_model: dict[str, DayMetrics] = defaultdict(DayMetrics)
        for fact in self.facts[day]:
            by_model[fact.model] += fact.metrics
        expected = self.expected_models[day]
        off = []
        for model in sorted(expected.keys() | by_model.keys()):
            want, have = expected.get(model, DayMetrics()), by_model.get(model, DayMetrics())
            if not have.matches(want):
                off.append(f"model {model!r} {_shortfall(want, have)}")
        return "; ".join([f"day {_shortfall(self.expected[day], got)}", *off[:5]])


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
        expected_models={when: aggregated[when].models if when in aggregated else {} for when in days},
        facts={when: [] for when in days},
        keys={when: {} for when in days},
        side={when: [] for when in days},
        models=len(spans),
    )
    del aggregated
    models_at_once = asyncio.Semaphore(2 * client.concurrency)

    async def one_model(model: str, first: date, last: date) -> None:
        async with models_at_once:
            activity = await client.daily_activity(first, last, DayQuery(model=model))
            model_days = {when: day for when, day in activity.items() if when in wanted}
            split = await split_model(model, model_days, client.daily_activity, client.each_row)
        for when, day in model_days.items():
            read.facts[when].extend(split.facts[when])
            read.keys[when].update(day.key_metadata)
            read.side[when].extend(
                SideFact(SIDE_NAMES[name], bucket, key, model, metrics)
                for (name, bucket, key), metrics in day.side_cells()
            )
        read.narrowings += split.narrowings
        read.unsettled.update(split.unsettled)

    largest_first = sorted(spans, key=lambda model: (-requests[model], model))
    await gather_all(one_model(model, *spans[model]) for model in largest_first)
    return read


def _shortfall(expected: DayMetrics, got: DayMetrics) -> str:
    """What ``got`` misses of ``expected``, field by field (negative: too much), for the logs."""
    missing = zip(NAMES, (expected - got).as_tuple(), strict=True)
    fields = ", ".join(f"{name} {value:+}" for name, value in missing if value)
    return f"short by {fields}" if fields else "equal within noise"


def total(facts: Iterable[Fact | SideFact]) -> DayMetrics:
    """The facts' sum, column by column (a day has thousands of facts)."""
    columns = zip(*(fact.metrics for fact in facts), strict=True)
    return DayMetrics(*(sum(column) for column in columns))
