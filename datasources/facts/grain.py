"""Reading a date range from the monthly rollups of migrations 0006 and 0013, exactly.

A range's sums are the month rows of every month it covers more than half of, minus the day rows of
those months' days outside the range, plus the day rows of the other months' days inside it: whole
months, corrected at the edges by at most half a month of days each. Every metric is an integer or a
``numeric``, so the corrections are exact. Whether a group has facts in the range comes from the month
rows alone: each carries the days of its month it has facts on (``active_days``, bit d-1 for day d), and a
group is present iff those meet the range's days in some month.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from psycopg import sql

from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter

# The usage_facts columns a rollup row sums, in the order the rollups store them.
METRIC_COLUMNS = (
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "total_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
    "total_response_time_ms",
    "timed_requests",
)


_TRUE = sql.SQL("true")


@dataclass(frozen=True)
class MonthRollup:
    table: str
    dimensions: frozenset[Dimension]
    days: str  # the smallest day-grain relation keeping the same dimensions


# Smallest first: the first that keeps what a query needs is read.
MONTH_ROLLUPS = (
    MonthRollup("usage_model_months", frozenset({Dimension.MODEL, Dimension.PROVIDER}), "usage_model_days"),
    MonthRollup("usage_user_months", frozenset({Dimension.USER}), "usage_user_days"),
    MonthRollup("usage_key_months", frozenset({Dimension.API_KEY, Dimension.USER}), "usage_facts"),
    MonthRollup("usage_team_months", frozenset({Dimension.TEAM}), "usage_team_days"),
)


def month_rollup_for(f: FactFilter, dims: Iterable[Dimension]) -> MonthRollup | None:
    """The smallest month rollup keeping ``dims`` and the filter's dimensions, if any does."""
    needed = {*dims, *(d for d in Dimension if f.values_for(d) is not None)}
    return next((rollup for rollup in MONTH_ROLLUPS if needed <= rollup.dimensions), None)


def _day_bits(first_day: int, last_day: int) -> int:
    """The ``active_days`` bits of days ``first_day``..``last_day`` of a month."""
    return ((1 << last_day) - 1) ^ ((1 << (first_day - 1)) - 1)


@dataclass(frozen=True)
class MonthGrain:
    """How a range reads from the month rollups (see the module docstring)."""

    summed: tuple[tuple[date, int], ...]  # months whose rows are summed, with the range's days in each
    subtracted: tuple[date, ...]  # days of those months outside the range: their day rows are subtracted
    added: tuple[date, ...]  # days of the other months: their day rows are added
    present: tuple[tuple[date, int], ...]  # every month the range meets, with the range's days in it

    @classmethod
    def of(cls, first: date, last: date) -> MonthGrain:
        summed: list[tuple[date, int]] = []
        subtracted: list[date] = []
        added: list[date] = []
        present: list[tuple[date, int]] = []
        month = first.replace(day=1)
        while month <= last:
            length = calendar.monthrange(month.year, month.month)[1]
            start = first.day if (month.year, month.month) == (first.year, first.month) else 1
            end = last.day if (month.year, month.month) == (last.year, last.month) else length
            bits = _day_bits(start, end)
            present.append((month, bits))
            inside = end - start + 1
            if 2 * inside > length:
                summed.append((month, bits))
                outside = [*range(1, start), *range(end + 1, length + 1)]
                subtracted.extend(month.replace(day=day) for day in outside)
            else:
                added.extend(month.replace(day=day) for day in range(start, end + 1))
            month = month + timedelta(days=length)
        return cls(tuple(summed), tuple(subtracted), tuple(added), tuple(present))

    @property
    def worth_it(self) -> bool:
        """Whether any month is read whole: else the day rows alone answer as well."""
        return bool(self.summed)


def filter_clause(f: FactFilter, params: dict[str, Any]) -> sql.Composable:
    """The filter's dimensions (not its dates) as a condition; adds their values to ``params``."""
    conditions: list[sql.Composable] = [_TRUE]
    for dimension in Dimension:
        values = f.values_for(dimension)
        if values is not None:
            name = f"only_{dimension.value}"
            params[name] = list(values)
            conditions.append(
                sql.SQL("{} = ANY({}::text[])").format(sql.Identifier(dimension.value), sql.Placeholder(name))
            )
    return sql.SQL(" AND ").join(conditions)


def _months_param(params: dict[str, Any], name: str, months: Iterable[tuple[date, int]]) -> sql.Composable:
    """``months`` as a relation ``r (month, days)``, and the condition on ``m.month`` that lets the month
    rollup's primary key find their rows."""
    listed = list(months)
    params[f"{name}_months"] = [month for month, _ in listed]
    params[f"{name}_days"] = [bits for _, bits in listed]
    return sql.SQL("unnest({months}::date[], {days}::integer[]) AS r (month, days) ON r.month = m.month"
                   " AND m.month = ANY({months}::date[])").format(
        months=sql.Placeholder(f"{name}_months"), days=sql.Placeholder(f"{name}_days")
    )  # fmt: skip


def month_relation(
    f: FactFilter,
    rollup: MonthRollup,
    grain: MonthGrain,
    params: dict[str, Any],
    *,
    only: sql.Composable = _TRUE,
) -> sql.Composable:
    """The filter's facts as rows of ``rollup``'s dimensions and the metric columns, with ``present`` (the
    row's group has facts in the range), to be summed per group: the month rows, the subtracted day rows
    negated, the added day rows. Rows of a group not ``present`` sum to zero. ``only``: a further
    condition on the dimensions, applied within each part (where the indexes can serve it)."""
    dims = sql.SQL(", ").join(sql.Identifier(d.value) for d in sorted(rollup.dimensions))
    metrics = sql.SQL(", ").join(sql.Identifier(column) for column in METRIC_COLUMNS)
    negated = sql.SQL(", ").join(sql.SQL("-{0} AS {0}").format(sql.Identifier(c)) for c in METRIC_COLUMNS)
    where = sql.SQL("{} AND {}").format(filter_clause(f, params), only)
    params["grain_subtracted"], params["grain_added"] = list(grain.subtracted), list(grain.added)
    return sql.SQL(
        "(SELECT {dims}, {metrics}, (m.active_days & r.days) <> 0 AS present"
        " FROM {months} m JOIN {summed} WHERE {where}"
        " UNION ALL SELECT {dims}, {negated}, false FROM {days}"
        " WHERE date = ANY(%(grain_subtracted)s::date[]) AND {where}"
        " UNION ALL SELECT {dims}, {metrics}, true FROM {days}"
        " WHERE date = ANY(%(grain_added)s::date[]) AND {where}) AS grain"
    ).format(
        dims=dims,
        metrics=metrics,
        negated=negated,
        months=sql.Identifier(rollup.table),
        summed=_months_param(params, "grain_summed", grain.summed),
        days=sql.Identifier(rollup.days),
        where=where,
    )


def presence_count(
    f: FactFilter,
    rollup: MonthRollup,
    grain: MonthGrain,
    dimension: Dimension,
    excluded: str | None,
    params: dict[str, Any],
) -> sql.Composable:
    """How many values of ``dimension`` but ``excluded`` have facts in the range, from the month rows.

    Distinct values are found by grouping (a hash) rather than ``count(DISTINCT …)`` (a sort)."""
    column = sql.Identifier(dimension.value)
    return sql.SQL(
        "(SELECT count(*) FROM (SELECT {column} FROM {months} m JOIN {present}"
        " WHERE (m.active_days & r.days) <> 0 AND {where} GROUP BY {column}) AS v WHERE {kept})"
    ).format(
        column=column,
        months=sql.Identifier(rollup.table),
        present=_months_param(params, "grain_present", grain.present),
        where=filter_clause(f, params),
        kept=sql.SQL("true")
        if excluded is None
        else sql.SQL("{} <> {}").format(column, sql.Literal(excluded)),
    )
