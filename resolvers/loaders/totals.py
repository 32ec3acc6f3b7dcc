"""Totals of a filter; the request's totals, its share denominator and ``unattributedSpend`` share it.

A key is (filter, whether the active counts are wanted).
"""

from __future__ import annotations

import asyncio

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.aggregates import FactFilter, UsageTotals
from usage_gateway.resolvers.loaders.base import Loader

TotalsKey = tuple[FactFilter, bool]
TotalsLoader = Loader[TotalsKey, UsageTotals]


def totals_loader(db: Database) -> TotalsLoader:
    async def load(keys: list[TotalsKey]) -> list[UsageTotals]:
        # Distinct filters are distinct aggregates: one statement each, a handful per request at most.
        return list(await asyncio.gather(*(facts.totals(db, f, active_counts=active) for f, active in keys)))

    return Loader(load)
