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

import calendar
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
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


def current_period(duration: str | None, reset_at: datetime | None, as_of: date, first_day: date) -> Period:
    """The period of a budget holding ``as_of`` (see the module docstring); ``first_day`` is the first
    stored day (a lifetime budget's start)."""
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


def run_out(
    limit: Decimal, daily: Mapping[date, Decimal], period: Period, as_of: date, rate: Decimal
) -> tuple[Decimal, date | None, BudgetStatus]:
    """(spend, run-out day, status) of a budget: the period's spend up to ``as_of`` from ``daily`` (the
    entity's spend by day), and the module docstring's rule. A limit of 0 is exceeded from the start."""
    spend = Decimal(0)
    crossed: date | None = None
    for day in sorted(d for d in daily if period.start <= d <= min(period.end, as_of)):
        spend += daily[day]
        if crossed is None and spend >= limit:
            crossed = day
    if limit <= 0:
        return spend, period.start, BudgetStatus.EXCEEDED
    if crossed is not None:
        return spend, crossed, BudgetStatus.EXCEEDED
    if rate <= 0:
        return spend, None, BudgetStatus.OK
    day = as_of + timedelta(days=math.ceil((limit - spend) / rate))
    if day > period.end:
        return spend, None, BudgetStatus.OK
    return spend, day, BudgetStatus.AT_RISK


# -- reading ------------------------------------------------------------------------------------------

_SETTINGS = """
SELECT b.entity, b.entity_id,
       CASE b.entity WHEN 'API_KEY' THEN COALESCE(k.id, b.entity_id) ELSE b.entity_id END,
       CASE b.entity WHEN 'API_KEY' THEN k.key_alias WHEN 'USER' THEN COALESCE(u.username, u.email)
                     ELSE t.alias END,
       b.max_budget, b.budget_duration, b.budget_reset_at,
       CASE b.entity WHEN 'API_KEY' THEN k.created_at WHEN 'USER' THEN u.created_at END,
       k.user_id, k.team_id
  FROM budgets b
  LEFT JOIN api_keys k ON b.entity = 'API_KEY' AND k.token_hash = b.entity_id
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


_DAILY = """
WITH b(idx, entity_id, start_day, end_day) AS (
    SELECT * FROM unnest(%(idx)s::int[], %(ids)s::text[], %(starts)s::date[], %(ends)s::date[])
)
SELECT b.idx, f.date, sum(f.spend) FROM b JOIN usage_facts f
    ON f.api_key = b.entity_id AND f.date BETWEEN b.start_day AND b.end_day
 WHERE b.idx = ANY(%(keys)s) GROUP BY 1, 2
UNION ALL
SELECT b.idx, f.date, sum(f.spend) FROM b JOIN usage_facts f
    ON f.user_id = b.entity_id AND f.date BETWEEN b.start_day AND b.end_day
 WHERE b.idx = ANY(%(users)s) GROUP BY 1, 2
UNION ALL
SELECT b.idx, f.date, sum(f.spend) FROM b JOIN usage_facts f
    ON f.team_id = b.entity_id AND f.date BETWEEN b.start_day AND b.end_day
 WHERE b.idx = ANY(%(teams)s) GROUP BY 1, 2
"""


async def daily_spend(
    db: Database, budgets: Sequence[tuple[BudgetSetting, date, date]]
) -> list[dict[date, Decimal]]:
    """Each budget's spend by day over its (start, end) days, in one statement."""
    by_entity: dict[BudgetEntity, list[int]] = defaultdict(list)
    for index, (setting, _, _) in enumerate(budgets):
        by_entity[setting.entity].append(index)
    params = {
        "idx": list(range(len(budgets))),
        "ids": [setting.entity_id for setting, _, _ in budgets],
        "starts": [start for _, start, _ in budgets],
        "ends": [end for _, _, end in budgets],
        "keys": by_entity[BudgetEntity.API_KEY],
        "users": by_entity[BudgetEntity.USER],
        "teams": by_entity[BudgetEntity.TEAM],
    }
    found: list[dict[date, Decimal]] = [{} for _ in budgets]
    if budgets:
        for index, day, spend in await db.fetch_all(_DAILY, params):
            found[index][day] = spend
    return found


async def day_states(db: Database, start: date, end: date) -> tuple[set[date], list[date]]:
    """(the verified stored days, the closed verified days newest first) from ``start`` to ``end``."""
    rows = await db.fetch_all(
        "SELECT date, status FROM usage_days WHERE verified AND date BETWEEN %s AND %s", (start, end)
    )
    verified = {row[0] for row in rows}
    closed = sorted((row[0] for row in rows if row[1] == "closed"), reverse=True)
    return verified, closed


async def first_stored_day(db: Database) -> date | None:
    row = await db.fetch_one("SELECT min(date) FROM usage_days")
    return row[0] if row else None


def _complete(setting: BudgetSetting, period: Period, as_of: date, verified: Iterable[date]) -> bool:
    if not period.exact:
        return False
    start = period.start
    if period.lifetime:
        if setting.created_at is None or setting.created_at.astimezone(UTC).date() < start:
            return False  # spend before the first stored day cannot be told
        start = setting.created_at.astimezone(UTC).date()
    needed = (as_of - start).days + 1
    present = {d for d in verified if start <= d <= as_of}
    return len(present) >= needed


def reads_from(found: Sequence[BudgetSetting], as_of: date) -> date:
    """The first day the budgets' bounded periods and the rate read (lifetime budgets read only what is
    stored)."""
    periods = [current_period(s.duration, s.reset_at, as_of, as_of) for s in found]
    starts = [p.start for p in periods if not p.lifetime]
    return min([*starts, as_of - timedelta(days=RATE_LOOKBACK_DAYS)])


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
    daily = await daily_spend(
        db, [(s, min(p.start, rate_from), as_of) for s, p in zip(found, periods, strict=True)]
    )
    out = []
    for setting, period, spend_by_day in zip(found, periods, daily, strict=True):
        rate = (
            sum((spend_by_day.get(d, Decimal(0)) for d in rate_days), Decimal(0)) / len(rate_days)
            if rate_days
            else Decimal(0)
        )
        spend, day, status = run_out(setting.limit, spend_by_day, period, as_of, rate)
        complete = _complete(setting, period, as_of, verified)
        out.append(BudgetState(setting, period, as_of, spend, rate, len(rate_days), day, status, complete))
    return out
