"""The cost curve: the warm dashboard (and its bare SQL) as the range grows (30, 90, 365 days) and as the
users grow (a tenth of the users and keys, same models and days), not one point."""

from __future__ import annotations

import logging

import psycopg

from bench.bare import open_bare
from bench.gateway import open_gateway
from bench.plan import Plan
from bench.queries import last_days
from bench.reference_data import Scale
from bench.report import Figure
from bench.warm import UPSTREAM, dashboard_figure, time_dashboard

log = logging.getLogger(__name__)


def facts_in_range(database_url: str, days: int, scale: Scale) -> int:
    first, last = last_days(scale.last_day, days)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM usage_facts WHERE date BETWEEN %s AND %s", (first, last)
        ).fetchone()
    return int(row[0]) if row else 0


async def _point(plan: Plan, database_url: str, redis_url: str, scale: Scale, days: int) -> Figure:
    first, last = last_days(scale.last_day, days)
    # A range longer than half the data set has its previous period (partly) before the first day: those
    # days are reported missing (UPSTREAM_UNAVAILABLE), and the rest is answered as usual.
    allowed = UPSTREAM if 2 * days > scale.days else ()
    async with (
        open_gateway(database_url, redis_url, last, answer_cache=False) as gateway,
        open_bare(database_url, gateway) as bare,
    ):
        timing = await time_dashboard(gateway, bare, first, last, plan.repeat, allowed_errors=allowed)
    name = f"warm dashboard, {days} d × {scale.users:,} users"
    figure = dashboard_figure("curves", name, timing, plan.repeat)
    log.info("%s: median %.0f ms", name, figure.value)
    figure.details["facts_in_range"] = facts_in_range(database_url, days, scale)
    figure.details["users"] = scale.users
    figure.details["previous_period_before_data"] = bool(allowed)
    return figure


async def curve_figures(plan: Plan, database_url: str, small_url: str, redis_url: str) -> list[Figure]:
    figures = [await _point(plan, database_url, redis_url, plan.scale, days) for days in plan.curve_days]
    figures.append(await _point(plan, small_url, redis_url, plan.small, plan.dashboard_days))
    return figures
