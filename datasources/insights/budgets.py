"""Budgets: where each LiteLLM budget (table ``budgets``, from ``syncDirectory``) stands in its current
period, from the stored facts.

**The period** holds the *as-of day* (the filter's ``to``, or today if ``to`` is later) and follows
``budget_duration`` the way LiteLLM 1.109.1 resets budgets (in UTC, LiteLLM's default time zone;
``duration_parser.get_next_standardized_reset_time``):

- ``Nd``: N-day windows ending at ``budget_reset_at`` (period = [reset − N days, reset), rolled by whole
  windows to hold the as-of day); without a reset time anchored on 1970-01-01, and ``7d`` on Mondays, as
  LiteLLM resets weekly budgets; ``Nw`` is 7N days;
- ``30d`` and ``1mo``: the calendar month (LiteLLM resets both on the 1st), unless a ``30d`` budget's
  reset time is not on a 1st (then 30-day windows from it); ``Nmo``: N calendar months;
- a unit finer than a day (``s``, ``m``, ``h``), or one LiteLLM would not read, cannot be told from daily
  facts: its period is the as-of day alone, marked incomplete;
- no duration is a lifetime budget: every stored day, judged against the end of the as-of day's month.

**Spend** is the sum of ``usage_facts.spend`` in the period up to the as-of day: a key's facts
(``api_key``), a user's attributed facts (``user_id``), a team's facts by each key's team on the day
(``team_id``). **The daily rate** is the mean of the entity's spend over the 7 most recent closed, verified
days up to the as-of day (within the 35 days before it; fewer when fewer are stored). **Run-out** is the
first day the spend so far plus the rate per day after the as-of day reaches the limit; for an exceeded
budget, the day its spend first reached the limit.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.budgets import BudgetEntity

RATE_DAYS = 7
RATE_LOOKBACK_DAYS = 35
_EPOCH = date(1970, 1, 1)
_MONDAY = date(1970, 1, 5)


class BudgetStatus(StrEnum):
    OK = "OK"
    AT_RISK = "AT_RISK"
    EXCEEDED = "EXCEEDED"


@dataclass(frozen=True)
class BudgetSetting:
    """A stored budget with what the directory says about its entity."""

    entity: BudgetEntity
    entity_id: str  # as stored: a key's token hash, a user id, a team id
    public_id: str  # as the API names it: a key's directory id (byApiKey's apiKeyId), else entity_id
    name: str | None
    limit: Decimal
    duration: str | None
    reset_at: datetime | None
    created_at: datetime | None  # the key's or user's creation, when the directory knows it
    owner: str | None  # a key's directory owner
    team: str | None  # a key's current team


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    exact: bool  # False: the days cannot hold exactly LiteLLM's period (a sub-day unit, a mid-day reset)
    lifetime: bool = False


@dataclass(frozen=True)
class BudgetState:
    setting: BudgetSetting
    period: Period
    as_of: date
    spend: Decimal
    daily_rate: Decimal
    rate_days: int
    run_out: date | None
    status: BudgetStatus
    complete: bool

    @property
    def share_used(self) -> float:
        """spend / limit; a limit of 0 counts as used up (1.0)."""
        return float(self.spend / self.setting.limit) if self.setting.limit > 0 else 1.0


def _parse(duration: str) -> tuple[int, str] | None:
    """LiteLLM's ``(\\d+)(mo|[smhdw]?)`` read of a duration; None where LiteLLM would refuse it."""
    digits = len(duration) - len(duration.lstrip("0123456789"))
    unit = duration[digits:].strip()
    if digits == 0 or unit not in ("s", "m", "h", "d", "w", "mo"):
        return None
    return int(duration[:digits]), unit


def _windows(anchor: date, length: int, as_of: date) -> tuple[date, date]:
    start = anchor + timedelta(days=((as_of - anchor).days // length) * length)
    return start, start + timedelta(days=length - 1)


def _months(as_of: date, count: int, anchor: date | None) -> tuple[date, date]:
    index = as_of.year * 12 + as_of.month - 1
    base = anchor.year * 12 + anchor.month - 1 if anchor is not None else 0
    first = index - (index - base) % count
    last = first + count - 1
    end_day = calendar.monthrange(last // 12, last % 12 + 1)[1]
    return date(first // 12, first % 12 + 1, 1), date(last // 12, last % 12 + 1, end_day)


@functools.lru_cache(maxsize=4096)  # pure; budgets share a few durations and reset times
def current_period(duration: str | None, reset_at: datetime | None, as_of: date, first_day: date) -> Period:
    """The period of a budget holding ``as_of`` (see the module docstring); ``first_day`` is the first
    stored day (a lifetime budget's start). A period reaching past the calendar (a duration of millions of
    days) cannot be told either: the as-of day alone, incomplete."""
    try:
        return _period(duration, reset_at, as_of, first_day)
    except (OverflowError, ValueError):
        return Period(as_of, as_of, False)


def _period(duration: str | None, reset_at: datetime | None, as_of: date, first_day: date) -> Period:
    if duration is None:
        end = date(as_of.year, as_of.month, calendar.monthrange(as_of.year, as_of.month)[1])
        return Period(min(first_day, as_of), end, True, lifetime=True)
    parsed = _parse(duration)
    if parsed is None or parsed[0] == 0 or parsed[1] in ("s", "m", "h"):
        return Period(as_of, as_of, False)
    count, unit = parsed
    reset = reset_at.astimezone(UTC) if reset_at is not None else None
    aligned = reset is None or reset.time() == time()
    reset_day = reset.date() if reset is not None else None
    if unit == "mo" or (count == 30 and unit == "d" and (reset_day is None or reset_day.day == 1)):
        months = count if unit == "mo" else 1
        start, end = _months(as_of, months, reset_day if months > 1 else None)
        return Period(start, end, aligned)
    days = count * 7 if unit == "w" else count
    anchor = reset_day if reset_day is not None else (_MONDAY if days % 7 == 0 else _EPOCH)
    start, end = _windows(anchor, days, as_of)
    return Period(start, end, aligned)


def judge(
    limit: Decimal, spend: Decimal, crossed: date | None, period: Period, as_of: date, rate: Decimal
) -> tuple[date | None, BudgetStatus]:
    """(run-out day, status) of a budget whose period spend up to ``as_of`` is ``spend`` and first reached
    the limit on ``crossed`` (if it did), by the module docstring's rule. A limit of 0 is exceeded from
    the start."""
    if limit <= 0:
        return period.start, BudgetStatus.EXCEEDED
    if crossed is not None:
        return crossed, BudgetStatus.EXCEEDED
    if rate <= 0:
        return None, BudgetStatus.OK
    day = as_of + timedelta(days=math.ceil((limit - spend) / rate))
    if day > period.end:
        return None, BudgetStatus.OK
    return day, BudgetStatus.AT_RISK


# -- reading ------------------------------------------------------------------------------------------

_SETTINGS = """
SELECT b.entity, b.entity_id,
       CASE b.entity WHEN 'API_KEY' THEN COALESCE(k.id, b.entity_id) ELSE b.entity_id END,
       CASE b.entity WHEN 'API_KEY' THEN COALESCE(k.key_alias, lk.key_alias)
                     WHEN 'USER' THEN COALESCE(u.username, u.email) ELSE t.alias END,
       b.max_budget, b.budget_duration, b.budget_reset_at,
       CASE b.entity WHEN 'API_KEY' THEN k.created_at WHEN 'USER' THEN u.created_at END,
       k.user_id, k.team_id
  FROM budgets b
  LEFT JOIN api_keys k ON b.entity = 'API_KEY' AND k.token_hash = b.entity_id
  -- a key outside the directory is named as LiteLLM's activity named it
  LEFT JOIN litellm_keys lk ON b.entity = 'API_KEY' AND lk.api_key = b.entity_id
  LEFT JOIN users u ON b.entity = 'USER' AND u.id = b.entity_id
  LEFT JOIN teams t ON b.entity = 'TEAM' AND t.id = b.entity_id
 WHERE b.entity = ANY(%s)
"""

_KEY_RELATIONS = """
SELECT token_hash, user_id, team_id FROM api_keys
 WHERE token_hash = ANY(%s) OR user_id = ANY(%s) OR team_id = ANY(%s)
"""


@dataclass(frozen=True)
class Scope:
    """Which budgets a filter shows: an entity is shown when it is related to every id list the filter
    gives (a key to its owner and team; a user and a team through the directory's keys)."""

    user_ids: tuple[str, ...] | None
    api_keys: tuple[str, ...] | None  # token hashes (key buckets)
    team_ids: tuple[str, ...] | None
    entities: tuple[BudgetEntity, ...]


def _matches(
    setting: BudgetSetting, scope: Scope, keys: Sequence[tuple[str, str | None, str | None]]
) -> bool:
    users, hashes, teams = scope.user_ids, scope.api_keys, scope.team_ids
    if setting.entity is BudgetEntity.API_KEY:
        return (
            (hashes is None or setting.entity_id in hashes)
            and (users is None or setting.owner in users)
            and (teams is None or setting.team in teams)
        )
    if setting.entity is BudgetEntity.USER:
        mine = [k for k in keys if k[1] == setting.entity_id]
        return (
            (users is None or setting.entity_id in users)
            and (hashes is None or any(k[0] in hashes for k in mine))
            and (teams is None or any(k[2] in teams for k in mine))
        )
    theirs = [k for k in keys if k[2] == setting.entity_id]
    return (
        (teams is None or setting.entity_id in teams)
        and (hashes is None or any(k[0] in hashes for k in theirs))
        and (users is None or any(k[1] in users for k in theirs))
    )


async def settings(db: Database, scope: Scope) -> list[BudgetSetting]:
    """The stored budgets the scope shows."""
    rows = await db.fetch_all(_SETTINGS, ([entity.value for entity in scope.entities],))
    found = [
        BudgetSetting(BudgetEntity(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows
    ]
    if scope.user_ids is None and scope.api_keys is None and scope.team_ids is None:
        return found
    relations = await db.fetch_all(
        _KEY_RELATIONS, (list(scope.api_keys or ()), list(scope.user_ids or ()), list(scope.team_ids or ()))
    )
    keys = [(str(r[0]), r[1], r[2]) for r in relations]
    return [setting for setting in found if _matches(setting, scope, keys)]


# Each budget's spend rows from ``first_day`` (its period's start or the rate window's, the earlier) to the
# as-of day, with its period's start: a key's facts, a user's and a team's day rollups (migrations 0004,
# 0013; equal to their facts). One array set per entity, so the planner sees how many budgets of each it
# joins (a hash join over the window, not an index scan per budget: 2.3x faster at 40,000 budgets).
_BUDGET_ROWS = """
WITH keys(idx, id, first_day, period_start) AS (
    SELECT * FROM unnest(%(API_KEY_idx)s::int[], %(API_KEY_ids)s::text[], %(API_KEY_firsts)s::date[],
                         %(API_KEY_starts)s::date[])
), users_(idx, id, first_day, period_start) AS (
    SELECT * FROM unnest(%(USER_idx)s::int[], %(USER_ids)s::text[], %(USER_firsts)s::date[],
                         %(USER_starts)s::date[])
), teams_(idx, id, first_day, period_start) AS (
    SELECT * FROM unnest(%(TEAM_idx)s::int[], %(TEAM_ids)s::text[], %(TEAM_firsts)s::date[],
                         %(TEAM_starts)s::date[])
), rows_(idx, date, spend, period_start) AS (
    SELECT k.idx, f.date, f.spend, k.period_start FROM keys k JOIN usage_facts f
        ON f.api_key = k.id AND f.date BETWEEN k.first_day AND %(as_of)s
    UNION ALL
    SELECT u.idx, d.date, d.spend, u.period_start FROM users_ u JOIN usage_user_days d
        ON d.user_id = u.id AND d.date BETWEEN u.first_day AND %(as_of)s
    UNION ALL
    SELECT t.idx, d.date, d.spend, t.period_start FROM teams_ t JOIN usage_team_days d
        ON d.team_id = t.id AND d.date BETWEEN t.first_day AND %(as_of)s
)
"""
# The period's spend and the rate days' spend of every budget with rows.
_SUMS = (
    _BUDGET_ROWS
    + """
SELECT idx, coalesce(sum(spend) FILTER (WHERE date >= period_start), 0),
       coalesce(sum(spend) FILTER (WHERE date = ANY(%(rate_days)s::date[])), 0)
  FROM rows_ GROUP BY idx
"""
)
# The first day the period's running sum reached the limit, for the budgets given (those whose period
# spend reached it: few, so the running sums are computed for them alone).
_CROSSED = (
    _BUDGET_ROWS
    + """, limits(idx, lim) AS (SELECT * FROM unnest(%(crossed_idx)s::int[], %(crossed_limits)s::numeric[])
), running AS (
    SELECT idx, date, sum(spend) OVER (PARTITION BY idx ORDER BY date) AS so_far
      FROM rows_ WHERE date >= period_start
)
SELECT r.idx, min(r.date) FROM running r JOIN limits l ON l.idx = r.idx WHERE r.so_far >= l.lim GROUP BY r.idx
"""
)


@dataclass(frozen=True)
class Summary:
    spend: Decimal  # in the period, up to the as-of day
    rate_spend: Decimal  # on the rate days
    crossed: date | None  # the first day the period's spend reached the limit


def _rows_params(
    budgets: Sequence[tuple[BudgetSetting, Period]], indexes: Sequence[int], rate_from: date
) -> dict[str, object]:
    """:data:`_BUDGET_ROWS`'s arrays for the budgets at ``indexes``."""
    params: dict[str, object] = {}
    for entity in BudgetEntity:
        chosen = [i for i in indexes if budgets[i][0].entity is entity]
        params[f"{entity.value}_idx"] = chosen
        params[f"{entity.value}_ids"] = [budgets[i][0].entity_id for i in chosen]
        params[f"{entity.value}_firsts"] = [min(budgets[i][1].start, rate_from) for i in chosen]
        params[f"{entity.value}_starts"] = [budgets[i][1].start for i in chosen]
    return params


async def summaries(
    db: Database,
    budgets: Sequence[tuple[BudgetSetting, Period]],
    as_of: date,
    rate_from: date,
    rate_days: Sequence[date],
) -> list[Summary]:
    """Each budget's :class:`Summary`, in two statements: every budget's sums, then the day the limit was
    reached for those whose period spend reached it."""
    if not budgets:
        return []
    sums = [(Decimal(0), Decimal(0)) for _ in budgets]
    everyone = range(len(budgets))
    params = {**_rows_params(budgets, everyone, rate_from), "as_of": as_of, "rate_days": list(rate_days)}
    for index, spend, rate_spend in await db.fetch_all(_SUMS, params):
        sums[index] = (spend, rate_spend)
    reached = [i for i in everyone if budgets[i][0].limit > 0 and sums[i][0] >= budgets[i][0].limit]
    crossed: dict[int, date] = {}
    if reached:
        params = {
            **_rows_params(budgets, reached, rate_from),
            "as_of": as_of,
            "crossed_idx": reached,
            "crossed_limits": [budgets[i][0].limit for i in reached],
        }
        crossed = {row[0]: row[1] for row in await db.fetch_all(_CROSSED, params)}
    return [Summary(spend, rate_spend, crossed.get(i)) for i, (spend, rate_spend) in enumerate(sums)]


async def day_states(db: Database, start: date, end: date) -> tuple[list[date], list[date]]:
    """(the verified stored days in order, the closed verified days newest first) from ``start`` to
    ``end``."""
    rows = await db.fetch_all(
        "SELECT date, status FROM usage_days WHERE verified AND date BETWEEN %s AND %s", (start, end)
    )
    verified = sorted(row[0] for row in rows)
    closed = sorted((row[0] for row in rows if row[1] == "closed"), reverse=True)
    return verified, closed


async def first_stored_day(db: Database) -> date | None:
    row = await db.fetch_one("SELECT min(date) FROM usage_days")
    return row[0] if row else None


def _complete(setting: BudgetSetting, period: Period, as_of: date, verified: Sequence[date]) -> bool:
    """``verified``: the verified stored days, sorted."""
    if not period.exact:
        return False
    start = period.start
    if period.lifetime:
        if setting.created_at is None or setting.created_at.astimezone(UTC).date() < start:
            return False  # spend before the first stored day cannot be told
        start = setting.created_at.astimezone(UTC).date()
    needed = (as_of - start).days + 1
    present = bisect.bisect_right(verified, as_of) - bisect.bisect_left(verified, start)
    return present >= needed


def reads_from(found: Sequence[BudgetSetting], as_of: date, max_days: int) -> date:
    """The first day the budgets' bounded periods and the rate read, at most ``max_days`` days up to
    ``as_of`` (the days worth making present; lifetime budgets read only what is stored)."""
    periods = [current_period(s.duration, s.reset_at, as_of, as_of) for s in found]
    starts = [p.start for p in periods if not p.lifetime]
    return max(
        min([*starts, as_of - timedelta(days=RATE_LOOKBACK_DAYS)]), as_of - timedelta(days=max_days - 1)
    )


async def states(db: Database, found: Sequence[BudgetSetting], as_of: date, today: date) -> list[BudgetState]:
    """Where each budget stands as of ``as_of`` (at most ``today``)."""
    if not found:
        return []
    first_day = await first_stored_day(db) or as_of
    periods = [current_period(s.duration, s.reset_at, as_of, first_day) for s in found]
    rate_from = as_of - timedelta(days=RATE_LOOKBACK_DAYS)
    earliest = min(min(p.start for p in periods), rate_from)
    verified, closed = await day_states(db, earliest, as_of)
    rate_days = [d for d in closed if d >= rate_from and d < today][:RATE_DAYS]
    pairs = list(zip(found, periods, strict=True))
    out = []
    for (setting, period), summary in zip(
        pairs, await summaries(db, pairs, as_of, rate_from, rate_days), strict=True
    ):
        rate = summary.rate_spend / len(rate_days) if rate_days else Decimal(0)
        day, status = judge(setting.limit, summary.spend, summary.crossed, period, as_of, rate)
        complete = _complete(setting, period, as_of, verified)
        out.append(
            BudgetState(setting, period, as_of, summary.spend, rate, len(rate_days), day, status, complete)
        )
    return out
