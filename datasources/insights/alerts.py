"""Alerts (``usage-gateway alerts --once``): budget thresholds crossed and new anomalies, each posted once
to a webhook as Slack-compatible JSON (``{"text": …, "blocks": […]}``), recorded in ``alerts``
(migration 0011).

- **Budget alerts**: every budget (:mod:`.budgets`, as of today) whose share used reached a threshold
  (default 50/80/100 %) in its current period. Identity: ``budget:<entity>:<id>:<period start>:<threshold>``.
  Thresholds crossed at once are posted as one alert (the highest), which settles the lower ones; once a
  higher threshold was posted in a period, a lower one is not.
- **Anomaly alerts**: the anomalies (:mod:`.anomalies`) of users, keys, models and teams on the last few
  closed, verified days. Identity: ``anomaly:<dimension>:<id>:<day>:<metric>``.

Delivery: one run at a time (a session advisory lock, so concurrent runs wait and then find the alerts
sent); an alert is marked sent only after the webhook answered 2xx; a failed post is recorded with its
error and posted again by the next run. Nothing is lost and, short of a crash between the webhook's 2xx
and the row's commit, nothing is posted twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import psycopg
from psycopg.rows import TupleRow

from usage_gateway.datasources.daycache.days import DayCache
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.budgets import BudgetEntity
from usage_gateway.datasources.directory.lookups import identify
from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter
from usage_gateway.datasources.insights import budgets
from usage_gateway.datasources.insights.anomalies import (
    ANOMALY_DIMENSIONS,
    RULE,
    Anomaly,
    AnomalyMetric,
    find_anomalies,
)
from usage_gateway.datasources.insights.budgets import BudgetState, Scope

DEFAULT_THRESHOLDS = (50, 80, 100)
_LOCK_KEY = 7_250_317  # arbitrary, fixed: identifies "alerts run" among advisory locks
_ENTITY_LABELS = {BudgetEntity.API_KEY: "API key", BudgetEntity.USER: "User", BudgetEntity.TEAM: "Team"}
_DIMENSION_LABELS = {Dimension.USER: "User", Dimension.API_KEY: "API key", Dimension.MODEL: "Model",
                     Dimension.TEAM: "Team"}  # fmt: skip

Poster = Callable[["Alert"], Awaitable[str | None]]  # None when posted, else why not


@dataclass(frozen=True)
class Alert:
    identity: str
    kind: str  # budget | anomaly
    text: str
    settles: tuple[str, ...] = ()  # identities this post also marks sent (lower thresholds crossed at once)
    superseded_by: tuple[str, ...] = ()  # identities whose having been sent makes this one moot

    def body(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": self.text}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"usage-gateway · `{self.identity}`"}],
                },
            ],
        }


@dataclass
class RunResult:
    sent: list[Alert] = field(default_factory=list)
    failed: list[tuple[Alert, str]] = field(default_factory=list)
    already_sent: int = 0


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def budget_alerts(states: Sequence[BudgetState], thresholds: Sequence[int]) -> list[Alert]:
    """At most one alert per budget: its highest threshold reached this period."""
    levels = sorted(set(thresholds))
    out = []
    for state in states:
        setting = state.setting
        base = f"budget:{setting.entity.value}:{setting.entity_id}:{state.period.start.isoformat()}"
        reached = [t for t in levels if state.spend * 100 >= setting.limit * t]
        if not reached:
            continue
        top = reached[-1]
        label = _ENTITY_LABELS[setting.entity]
        who = f"{setting.name} ({setting.public_id})" if setting.name else setting.public_id
        period = f"{state.period.start.isoformat()} – {state.period.end.isoformat()}"
        if setting.duration is None:
            period = f"lifetime, as of {state.as_of.isoformat()}"
        head = (
            f":rotating_light: *Budget exceeded* ({top} %)"
            if top >= 100
            else f":warning: *Budget {top} % used*"
        )
        text = (
            f"{head}: {label} *{who}* spent {_money(state.spend)} of {_money(setting.limit)}"
            f" ({state.share_used:.0%}) in {period} ({setting.duration or 'no reset'})."
        )
        if state.run_out is not None and state.spend < setting.limit:
            text += f" At {_money(state.daily_rate)}/day it runs out on {state.run_out.isoformat()}."
        out.append(
            Alert(
                identity=f"{base}:{top}",
                kind="budget",
                text=text,
                settles=tuple(f"{base}:{t}" for t in reached[:-1]),
                superseded_by=tuple(f"{base}:{t}" for t in levels if t > top),
            )
        )
    return out


def anomaly_alerts(anomalies: Sequence[Anomaly], names: Mapping[str, str | None]) -> list[Alert]:
    out = []
    for anomaly in anomalies:
        label = _DIMENSION_LABELS[anomaly.dimension]
        name = names.get(anomaly.key)
        who = f"{name} ({anomaly.key})" if name else anomaly.key
        if anomaly.metric is AnomalyMetric.SPEND:
            what = f"spent {anomaly.value:,.2f} against a baseline of {anomaly.baseline:,.2f}"
        else:
            what = f"failed {anomaly.value:.1%} of requests against a baseline of {anomaly.baseline:.1%}"
        out.append(
            Alert(
                identity=f"anomaly:{anomaly.dimension.name}:{anomaly.key}:{anomaly.date.isoformat()}:"
                f"{anomaly.metric.name}",
                kind="anomaly",
                text=f":mag: *Anomaly*: {label} *{who}* {what} on {anomaly.date.isoformat()}"
                f" ({anomaly.size:.1f} spreads above; threshold {anomaly.threshold:,.2f}, median of"
                f" {anomaly.baseline_days} days).",
            )
        )
    return out


async def evaluate(
    db: Database,
    days: DayCache | None,
    today: date,
    thresholds: Sequence[int],
    anomaly_days: int,
    max_days: int = 400,
) -> list[Alert]:
    """Every alert that holds today (sent or not). With ``days``, the days read (at most ``max_days``) are
    made present first."""
    found = await budgets.settings(db, Scope(None, None, None, tuple(BudgetEntity)))
    if days is not None and found:
        await days.ensure(budgets.reads_from(found, today, max_days), today)
    out = budget_alerts(await budgets.states(db, found, today, today), thresholds)
    if anomaly_days > 0:
        checked = FactFilter(today - timedelta(days=anomaly_days), today - timedelta(days=1))
        if days is not None:
            await days.ensure(checked.date_from - timedelta(days=RULE.window_days), checked.date_to)
        for dimension in ANOMALY_DIMENSIONS:
            anomalies = await find_anomalies(db, dimension, checked)
            _, names = await identify(db, dimension, sorted({a.key for a in anomalies}))
            out.extend(anomaly_alerts(anomalies, names))
    return out


async def _sent(conn: psycopg.AsyncConnection[TupleRow], alerts: Sequence[Alert]) -> set[str]:
    wanted = sorted({i for a in alerts for i in (a.identity, *a.settles, *a.superseded_by)})
    cursor = await conn.execute(
        "SELECT identity FROM alerts WHERE sent_at IS NOT NULL AND identity = ANY(%s)", (wanted,)
    )
    return {row[0] for row in await cursor.fetchall()}


def _pending(alert: Alert, sent: set[str]) -> bool:
    return alert.identity not in sent and not any(i in sent for i in alert.superseded_by)


async def pending(db: Database, alerts: Sequence[Alert]) -> list[Alert]:
    """The alerts not sent yet (a dry run's answer; no lock taken, nothing written)."""
    async with db.connection() as conn:
        sent = await _sent(conn, alerts)
    return [alert for alert in alerts if _pending(alert, sent)]


_RECORD_SENT = """
INSERT INTO alerts AS a (identity, kind, message, attempts, sent_at)
SELECT unnest(%(identities)s::text[]), %(kind)s, %(message)s, 1, now()
ON CONFLICT (identity) DO UPDATE
   SET attempts = a.attempts + 1, message = EXCLUDED.message, sent_at = COALESCE(a.sent_at, now()),
       last_error = NULL
"""
_RECORD_FAILED = """
INSERT INTO alerts AS a (identity, kind, message, attempts, last_error)
VALUES (%(identity)s, %(kind)s, %(message)s, 1, %(error)s)
ON CONFLICT (identity) DO UPDATE
   SET attempts = a.attempts + 1, message = EXCLUDED.message, last_error = EXCLUDED.last_error
"""


async def deliver(db: Database, alerts: Sequence[Alert], post: Poster) -> RunResult:
    """Post each alert not yet sent, one run at a time, recording each outcome as it happens."""
    result = RunResult()
    async with db.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            sent = await _sent(conn, alerts)
            for alert in alerts:
                if not _pending(alert, sent):
                    result.already_sent += 1
                    continue
                error = await post(alert)
                message = orjson.dumps(alert.body()).decode()
                if error is None:
                    identities = [alert.identity, *alert.settles]
                    await conn.execute(
                        _RECORD_SENT, {"identities": identities, "kind": alert.kind, "message": message}
                    )
                    sent.update(identities)
                    result.sent.append(alert)
                else:
                    await conn.execute(
                        _RECORD_FAILED,
                        {"identity": alert.identity, "kind": alert.kind, "message": message, "error": error},
                    )
                    result.failed.append((alert, error))
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return result


def webhook(client: httpx.AsyncClient, url: str) -> Poster:
    """Posts an alert's body to ``url``; a 2xx answer is success, anything else the reason it failed (the
    URL, which holds the webhook's secret, is never part of it)."""

    async def post(alert: Alert) -> str | None:
        try:
            response = await client.post(url, json=alert.body())
        except httpx.TimeoutException:
            return "the webhook did not answer in time"
        except httpx.HTTPError as exc:
            return f"the webhook could not be reached ({type(exc).__name__})"
        if response.is_success:
            return None
        return f"the webhook answered HTTP {response.status_code}"

    return post
