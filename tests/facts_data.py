"""Random usage facts, their insertion, and the Python model that
:mod:`usage_gateway.datasources.facts.aggregates` must agree with."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields, replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import (
    Dimension,
    Direction,
    FactFilter,
    Granularity,
    GroupRow,
    Order,
    UsageTotals,
)

BASE = date(2024, 1, 22)  # a Monday; BASE + 45 days crosses two month ends
DAYS = 45

USERS = ("alice", "bob", "Zoë", "litellm:x", "unattributed")
KEYS = (
    *(hashlib.sha256(name.encode()).hexdigest() for name in ("k1", "k2", "k3")),
    "raw:abc",
    "unattributed",
)
MODELS = ("gpt-4o", "claude-3", "Llama-3", "unknown-model")
PROVIDERS = ("openai", "anthropic", "bedrock", "unknown")
TEAMS = ("team-a", "Team-B", "no-team")
VALUES = {
    Dimension.USER: USERS,
    Dimension.API_KEY: KEYS,
    Dimension.MODEL: MODELS,
    Dimension.PROVIDER: PROVIDERS,
    Dimension.TEAM: TEAMS,
}
# What a group lists beside its totals: a model its providers, a provider its models, others nothing.
RELATED = {Dimension.MODEL: Dimension.PROVIDER, Dimension.PROVIDER: Dimension.MODEL}


@dataclass(frozen=True)
class Fact:
    date: date
    api_key: str
    litellm_user_id: str
    model: str
    provider: str
    user_id: str
    spend: Decimal
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
    team_id: str = "no-team"  # the key's team on the day (migration 0007)

    def value(self, dimension: Dimension) -> str:
        value: str = getattr(self, dimension.value)
        return value

    def matches(self, f: FactFilter) -> bool:
        if not f.date_from <= self.date <= f.date_to:
            return False
        for dimension in Dimension:
            allowed = f.values_for(dimension)
            if allowed is not None and self.value(dimension) not in allowed:
                return False
        return True


COLUMNS = tuple(field.name for field in fields(Fact))
# One COPY statement: the rollup triggers recompute each day once per statement, not once per row.
COPY = "COPY usage_facts ({}) FROM STDIN".format(", ".join(COLUMNS))

# Few distinct small values, so that many groups tie on every metric.
counts = st.one_of(st.integers(0, 3), st.integers(0, 10**12))
spends = st.one_of(
    st.sampled_from([Decimal(0), Decimal("0.5"), Decimal("1.5")]),
    st.decimals(min_value=0, max_value=1000, places=10, allow_nan=False, allow_infinity=False),
)
facts = st.builds(
    Fact,
    date=st.integers(0, DAYS).map(lambda n: BASE + timedelta(days=n)),
    api_key=st.sampled_from(KEYS),
    litellm_user_id=st.sampled_from(("u1", "Unassigned")),
    model=st.sampled_from(MODELS),
    provider=st.sampled_from(PROVIDERS),
    user_id=st.sampled_from(USERS),
    spend=spends,
    **dict.fromkeys(COLUMNS[7:-1], counts),
    team_id=st.sampled_from(TEAMS),
)
# Hypothesis favours short lists; an explicit size spreads them up to 40 facts.
facts_lists = st.integers(0, 40).flatmap(
    lambda size: st.lists(
        facts,
        min_size=size,
        max_size=size,
        unique_by=lambda fact: (fact.date, fact.api_key, fact.litellm_user_id, fact.model, fact.provider),
    )
)


def _subsets(values: Sequence[str]) -> st.SearchStrategy[tuple[str, ...] | None]:
    """Mostly no filter, else any subset of the values (an unknown one included, or none at all)."""
    subsets = st.lists(st.sampled_from([*values, "absent"]), max_size=len(values), unique=True).map(tuple)
    return st.integers(0, 5).flatmap(lambda n: subsets if n == 0 else st.none())


@st.composite
def filters(draw: st.DrawFn) -> FactFilter:
    if draw(st.booleans()):  # about the whole data, give or take a few days at either end
        start = BASE + timedelta(days=draw(st.integers(-3, 3)))
        end = BASE + timedelta(days=DAYS + draw(st.integers(-3, 3)))
    else:
        start = BASE + timedelta(days=draw(st.integers(-3, DAYS)))
        end = start + timedelta(days=draw(st.integers(0, DAYS)))
    return FactFilter(
        start,
        end,
        user_ids=draw(_subsets(USERS)),
        api_keys=draw(_subsets(KEYS)),
        models=draw(_subsets(MODELS)),
        providers=draw(_subsets(PROVIDERS)),
        team_ids=draw(_subsets(TEAMS)),
    )


async def replace_facts(db: Database, facts: Iterable[Fact]) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM usage_facts")
        async with conn.cursor() as cursor, cursor.copy(COPY) as copy:
            for fact in facts:
                await copy.write_row(astuple(fact))


# --- The Python model -----------------------------------------------------------------------------------


def py_totals(facts: Iterable[Fact]) -> UsageTotals:
    facts = list(facts)
    return UsageTotals(
        spend=sum((fact.spend for fact in facts), Decimal(0)),
        requests=sum(fact.api_requests for fact in facts),
        successful_requests=sum(fact.successful_requests for fact in facts),
        failed_requests=sum(fact.failed_requests for fact in facts),
        prompt_tokens=sum(fact.prompt_tokens for fact in facts),
        completion_tokens=sum(fact.completion_tokens for fact in facts),
        cache_read_input_tokens=sum(fact.cache_read_input_tokens for fact in facts),
        cache_creation_input_tokens=sum(fact.cache_creation_input_tokens for fact in facts),
        total_tokens=sum(fact.total_tokens for fact in facts),
        total_response_time_ms=sum(fact.total_response_time_ms for fact in facts),
        timed_requests=sum(fact.timed_requests for fact in facts),
        active_users=len({fact.user_id for fact in facts} - {"unattributed"}),
        active_api_keys=len({fact.api_key for fact in facts} - {"unattributed"}),
        active_models=len({fact.model for fact in facts}),
    )


ADDITIVE = tuple(f.name for f in fields(UsageTotals) if not f.name.startswith("active_"))


def additive_sum(parts: Iterable[UsageTotals]) -> UsageTotals:
    """The field-by-field sum of the additive metrics (active counts left at zero)."""
    total = UsageTotals.ZERO
    for part in parts:
        total = replace(total, **{name: getattr(total, name) + getattr(part, name) for name in ADDITIVE})
    return total


def additive_only(value: UsageTotals) -> UsageTotals:
    return replace(value, active_users=0, active_api_keys=0, active_models=0)


def without_active(row: GroupRow) -> GroupRow:
    return replace(row, totals=additive_only(row.totals))


def bucket_start(day: date, granularity: Granularity) -> date:
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_bucket(start: date, granularity: Granularity) -> date:
    if granularity is Granularity.DAY:
        return start + timedelta(days=1)
    if granularity is Granularity.WEEK:
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def buckets(f: FactFilter, granularity: Granularity) -> list[date]:
    result, current = [], bucket_start(f.date_from, granularity)
    while current <= f.date_to:
        result.append(current)
        current = next_bucket(current, granularity)
    return result


def py_series(
    facts: Sequence[Fact], f: FactFilter, granularity: Granularity
) -> list[tuple[date, UsageTotals]]:
    matching = [fact for fact in facts if fact.matches(f)]
    return [
        (start, py_totals(fact for fact in matching if bucket_start(fact.date, granularity) == start))
        for start in buckets(f, granularity)
    ]


def _related(group: Iterable[Fact], related: Dimension | None) -> tuple[str, ...]:
    return () if related is None else tuple(sorted({fact.value(related) for fact in group}))


def py_groups(facts: Iterable[Fact], f: FactFilter, dimension: Dimension) -> list[GroupRow]:
    """Groups of the matching facts, in key order."""
    by_key: dict[str, list[Fact]] = {}
    for fact in facts:
        if fact.matches(f):
            by_key.setdefault(fact.value(dimension), []).append(fact)
    return [
        GroupRow(
            key=key,
            totals=py_totals(group),
            last_active=max(fact.date for fact in group),
            related=_related(group, RELATED.get(dimension)),
        )
        for key, group in sorted(by_key.items())
    ]


def py_order(rows: Iterable[GroupRow], order: Order) -> list[GroupRow]:
    """Rows by the metric in the direction, ties by key ascending."""
    by_key = sorted(rows, key=lambda row: row.key)
    return sorted(
        by_key, key=lambda row: row.totals.metric(order.metric), reverse=order.direction is Direction.DESC
    )


def make_fact(
    day: date = BASE,
    *,
    user_id: str = "alice",
    api_key: str = KEYS[0],
    model: str = MODELS[0],
    provider: str = PROVIDERS[0],
    spend: Decimal | str = "1",
    requests: int = 1,
) -> Fact:
    """One fact with a successful, timed request count of ``requests`` and 10 tokens per request.

    Its LiteLLM user is named after ``user_id``, so facts differing only in their user are distinct rows.
    """
    return Fact(
        day, api_key, f"u-{user_id}", model, provider, user_id, Decimal(spend),
        7 * requests, 3 * requests, 0, 0, 10 * requests, requests, requests, 0, 100 * requests, requests,
    )  # fmt: skip
