"""The demo's LiteLLM budgets: ``max_budget``, ``budget_duration`` and ``budget_reset_at`` on a realistic
share of users, keys and teams, drawn from a random stream of their own (the rest of the data set is the
same as without them).

- users: about a third, "30d" or "1mo" mostly, some "7d";
- keys: about one live owned key in eight, "7d" and "1d" mostly, some "30d" and "14d", a few lifetime;
- teams: most "1mo", one "30d", one without a budget.

Each limit is the entity's recent daily spend (the last 28 full days) times its period's length times a
factor, so most budgets are comfortable while some are projected to run out before their period ends and
a few are already exceeded: the demo has something to show. ``budget_reset_at`` is what LiteLLM 1.109.1
sets (``get_next_standardized_reset_time`` in ``litellm/litellm_core_utils/duration_parser.py``): the
next midnight for "1d", the next Monday for "7d", the 1st of next month for "30d" and "1mo", N days from
a midnight for other "Nd" (here: the last reset, some days ago).
"""

from __future__ import annotations

import calendar
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

USER_SHARE = 0.35
KEY_SHARE = 0.125
RATE_DAYS = 28
USER_DURATIONS = (("30d", 0.45), ("1mo", 0.35), ("7d", 0.2))
KEY_DURATIONS = (("7d", 0.35), ("1d", 0.25), ("30d", 0.2), ("14d", 0.1), (None, 0.1))
NO_TEAM_BUDGET = "team-legal"
THIRTY_DAY_TEAM = "team-research"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _month_start_after(today: date) -> date:
    return date(today.year + today.month // 12, today.month % 12 + 1, 1)


def reset_at(duration: str | None, today: date, rng: random.Random) -> datetime | None:
    """LiteLLM's ``budget_reset_at`` for ``duration`` as of ``today`` (see the module docstring)."""
    if duration is None:
        return None
    days = int(duration[:-1]) if duration.endswith("d") else None
    if duration == "1d":
        day = today + timedelta(days=1)
    elif duration == "7d":
        day = today + timedelta(days=7 - today.weekday())
    elif duration in ("30d", "1mo"):
        day = _month_start_after(today)
    elif days is not None:
        day = today + timedelta(days=rng.randint(1, days))
    else:
        raise ValueError(f"no demo reset for {duration!r}")
    return datetime.combine(day, time(), UTC)


def period_days(duration: str | None, today: date) -> int:
    """How many days the current period of ``duration`` has (lifetime: the data set's 120 days)."""
    if duration is None:
        return 120
    if duration in ("30d", "1mo"):
        return calendar.monthrange(today.year, today.month)[1]
    return int(duration[:-1])


def _factor(rng: random.Random) -> float:
    """How many periods of recent spend the limit allows: a few under one (at risk or exceeded), most
    comfortably over."""
    draw = rng.random()
    if draw < 0.1:
        return rng.uniform(0.1, 0.4)
    if draw < 0.25:
        return rng.uniform(0.6, 1.0)
    if draw < 0.4:
        return rng.uniform(1.0, 1.4)
    return rng.uniform(1.5, 4.0)


def _nice(amount: float) -> float:
    for step, below in ((0.1, 1), (0.5, 10), (5, 100), (10, 1000)):
        if amount < below:
            return max(step, round(amount / step) * step)
    return round(amount / 50) * 50


def _rates(
    rows: Iterable[dict[str, Any]], today: date, group: str, keys: dict[str, str | None]
) -> dict[str, float]:
    first = (today - timedelta(days=RATE_DAYS)).isoformat()
    spend: dict[str, float] = defaultdict(float)
    for row in rows:
        if first <= row["date"] < today.isoformat():
            name = row[group] if group != "team_id" else keys.get(row["api_key"])
            if name:
                spend[name] += row["spend"]
    return {name: total / RATE_DAYS for name, total in spend.items()}


def _assign(
    objects: Sequence[dict[str, Any]],
    id_field: str,
    rates: dict[str, float],
    durations: Sequence[tuple[str | None, float]],
    today: date,
    rng: random.Random,
) -> None:
    for obj in objects:
        duration = rng.choices([d for d, _ in durations], weights=[w for _, w in durations])[0]
        rate = rates.get(obj[id_field], 0.0)
        limit = _nice(max(rate, 0.05) * period_days(duration, today) * _factor(rng))
        moment = reset_at(duration, today, rng)
        obj.update(
            max_budget=limit,
            budget_duration=duration,
            budget_reset_at=None if moment is None else _stamp(moment),
        )


def add_budgets(
    users: list[dict[str, Any]],
    keys: list[dict[str, Any]],
    teams: list[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    seed: int,
    today: date,
) -> None:
    """Give LiteLLM's user, key and team objects their budgets, in place."""
    rng = random.Random(f"budgets-{seed}")
    # Every user and live key carries LiteLLM's budget columns (CONTRACT §6), null without a budget.
    for obj in (*users, *(key for key in keys if not key.get("deleted"))):
        obj.setdefault("budget_duration", None)
        obj.setdefault("budget_reset_at", None)
    key_teams = {key["token"]: key.get("team_id") for key in keys}
    user_rates = _rates(rows, today, "user_id", {})
    active_users = [user for user in users if user_rates.get(user["user_id"])]
    _assign(
        rng.sample(active_users, round(USER_SHARE * len(active_users))),
        "user_id",
        user_rates,
        USER_DURATIONS,
        today,
        rng,
    )
    key_rates = _rates(rows, today, "api_key", {})
    live = [k for k in keys if k.get("user_id") and not k.get("blocked") and not k.get("deleted")]
    live = [k for k in live if key_rates.get(k["token"])]
    _assign(rng.sample(live, round(KEY_SHARE * len(live))), "token", key_rates, KEY_DURATIONS, today, rng)
    team_rates = _rates(rows, today, "team_id", key_teams)
    for team in teams:
        if team["team_id"] == NO_TEAM_BUDGET:
            continue
        duration = "30d" if team["team_id"] == THIRTY_DAY_TEAM else "1mo"
        _assign([team], "team_id", team_rates, ((duration, 1.0),), today, rng)
