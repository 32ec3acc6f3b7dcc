"""Rebuild the exact (LiteLLM user × model × provider) split of every key's day.

LiteLLM's day rolls the same rows up three separate ways — by model, by provider, by user (entity) —
each with a per-key breakdown, but never crossed (CONTRACT §2.6). For one key the cross is determined
whenever at most one of the three has more than one value. Otherwise we narrow the day server-side:
``model=`` fixes the model (the filter is exact); if the key still spans several users *and* several
providers, ``model=&user_id=`` fixes the user too (LiteLLM's ``Unassigned`` user is ``user_id=`` empty,
which LiteLLM matches against the empty owner its writer records). Providers are never guessed from a
model's name; a cell that cannot be pinned down shows up as a mismatch in the day's verification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from datasources.litellm import BreakdownEntry, DayActivity, DayQuery
from datasources.metrics import DayMetrics

UNASSIGNED = "Unassigned"

FetchDay = Callable[[DayQuery], Awaitable[DayActivity]]


@dataclass(frozen=True)
class Fact:
    api_key: str
    litellm_user_id: str
    model: str
    provider: str
    metrics: DayMetrics


@dataclass(frozen=True)
class _KeyShape:
    users: dict[str, DayMetrics]
    models: dict[str, DayMetrics]
    providers: dict[str, DayMetrics]


def _shape(day: DayActivity, key: str) -> _KeyShape:
    def of(entries: dict[str, BreakdownEntry]) -> dict[str, DayMetrics]:
        return {name: entry.by_key[key] for name, entry in entries.items() if key in entry.by_key}

    return _KeyShape(users=of(day.entities), models=of(day.models), providers=of(day.providers))


def _determined(day: DayActivity, key: str) -> list[Fact] | None:
    """The key's facts if the day pins them down, else None (needs a narrower query)."""
    shape = _shape(day, key)
    dims = {"user": shape.users, "model": shape.models, "provider": shape.providers}
    varying = [name for name, values in dims.items() if len(values) > 1]
    if len(varying) > 1 or any(not values for values in dims.values()):
        return None
    fixed = {name: next(iter(values)) for name, values in dims.items() if len(values) == 1}
    if not varying:
        return [Fact(key, fixed["user"], fixed["model"], fixed["provider"], day.api_keys[key])]
    spread = varying[0]
    facts = []
    for value, metrics in dims[spread].items():
        cell = {**fixed, spread: value}
        facts.append(Fact(key, cell["user"], cell["model"], cell["provider"], metrics))
    return facts


class DaySplitter:
    """Splits one day, issuing each narrowing query at most once and all of a level concurrently."""

    def __init__(self, fetch: FetchDay) -> None:
        self._fetch = fetch
        self.queries: list[DayQuery] = []

    async def _many(self, queries: Iterable[DayQuery]) -> dict[DayQuery, DayActivity]:
        wanted = sorted(set(queries), key=lambda q: (q.model or "", q.user_id or ""))
        self.queries.extend(wanted)
        days = await asyncio.gather(*(self._fetch(q) for q in wanted))
        return dict(zip(wanted, days, strict=True))

    async def split(self, day: DayActivity) -> list[Fact]:
        facts: list[Fact] = []
        by_model: list[str] = []
        for key in day.api_keys:
            found = _determined(day, key)
            if found is None:
                by_model.append(key)
            else:
                facts.extend(found)
        if not by_model:
            return facts

        model_days = await self._many(DayQuery(model=m) for key in by_model for m in _shape(day, key).models)
        by_user: list[tuple[str, str]] = []
        for key in by_model:
            for model in _shape(day, key).models:
                found = _determined(model_days[DayQuery(model=model)], key)
                if found is None:
                    by_user.append((key, model))
                else:
                    facts.extend(found)
        if not by_user:
            return facts

        user_days = await self._many(
            DayQuery(model=model, user_id=_user_filter(user))
            for key, model in by_user
            for user in _shape(model_days[DayQuery(model=model)], key).users
        )
        for key, model in by_user:
            for user in _shape(model_days[DayQuery(model=model)], key).users:
                narrowed = user_days[DayQuery(model=model, user_id=_user_filter(user))]
                facts.extend(
                    Fact(key, user, model, provider, metrics)
                    for provider, metrics in _shape(narrowed, key).providers.items()
                )
        return facts


def _user_filter(user: str) -> str:
    return "" if user == UNASSIGNED else user


def total(facts: Iterable[Fact]) -> DayMetrics:
    result = DayMetrics()
    for fact in facts:
        result += fact.metrics
    return result
