"""``Usage.anomalies``: the anomalies of the filter's range, named, linked and keyset-paged."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from usage_gateway.datasources.directory.lookups import identify
from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter
from usage_gateway.datasources.insights.anomalies import (
    ANOMALY_DIMENSIONS,
    RULE,
    Anomaly,
    AnomalyMetric,
    find_anomalies,
)
from usage_gateway.errors import BadUserInput
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import check_first
from usage_gateway.resolvers.insights import cursors
from usage_gateway.resolvers.usage import UsageRequest, ensure_days

_CURSOR = "anomalies"
_POSITION = ("dimension", "size", "date", "id", "metric")


@dataclass(frozen=True)
class LinkFilter:
    """The ``UsageFilter`` that shows one entity on one day under the request's other conditions."""

    date_from: date
    date_to: date
    user_ids: tuple[str, ...] | None
    api_key_ids: tuple[str, ...] | None
    models: tuple[str, ...] | None
    providers: tuple[str, ...] | None
    team_ids: tuple[str, ...] | None


@dataclass(frozen=True)
class AnomalyNode:
    anomaly: Anomaly
    id: str  # as the breakdowns name the entity (a directory key's id for a key in the directory)
    name: str | None
    link: LinkFilter


@dataclass(frozen=True)
class AnomalyPage:
    total_count: int
    nodes: list[AnomalyNode]
    has_next_page: bool
    end_cursor: str | None
    skipped_days: list[date]  # days of the range that are open, unverified or missing: never checked


def check_arguments(
    tag: str | None,
    start: date | None,
    dimension: Dimension,
    first: int,
    after: str | None,
    min_spend: float | None,
    ctx: Context,
) -> None:
    """BadUserInput for arguments ``anomalies`` refuses, before anything runs (``tag`` and ``start``: the
    filter's tag and first day, when known)."""
    check_first(first, ctx.limits)
    if after is not None:
        _after(after, dimension)
    if min_spend is not None and not (math.isfinite(min_spend) and min_spend >= 0):
        raise BadUserInput(f"`minSpend` must be a finite amount of at least 0, got {min_spend}")
    if start is not None and start.toordinal() <= RULE.window_days:
        raise BadUserInput(f"`anomalies` needs {RULE.window_days} days before `from` for its baselines")
    if tag is not None:
        raise BadUserInput(
            "`anomalies` cannot be found under a `tag` filter: tag activity counts a request once per tag"
            " it carries, so a baseline of the tag's entities would not be exact; filter by users, keys,"
            " models, providers or teams"
        )


def _after(after: str, dimension: Dimension) -> tuple[float, date, str, str]:
    position = cursors.decode(after, _CURSOR, _POSITION)
    try:
        size, day = float(position["size"]), date.fromisoformat(position["date"])
        metric = AnomalyMetric(position["metric"]).value
    except ValueError:
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor") from None
    if position["dimension"] != dimension.name:
        raise BadUserInput("`after` is not a cursor of this connection: it was made for another dimension")
    return -size, day, position["id"], metric


def _order(node: AnomalyNode) -> tuple[float, date, str, str]:
    """Size descending, then date, id and metric."""
    return -node.anomaly.size, node.anomaly.date, node.id, node.anomaly.metric.value


def _cursor(node: AnomalyNode) -> str:
    a = node.anomaly
    return cursors.encode(
        _CURSOR,
        {
            "dimension": a.dimension.name,
            "size": repr(a.size),
            "date": a.date.isoformat(),
            "id": node.id,
            "metric": a.metric.value,
        },
    )


async def anomalies(
    ctx: Context,
    request: UsageRequest,
    dimension: Dimension,
    *,
    first: int,
    after: str | None,
    min_spend: float | None,
    metric: AnomalyMetric | None,
) -> AnomalyPage:
    f = request.filter
    check_arguments(
        None if f.tags is None else f.tags[0], f.date_from, dimension, first, after, min_spend, ctx
    )
    if dimension not in ANOMALY_DIMENSIONS:
        raise BadUserInput(f"no anomalies by {dimension.name}")
    # The baseline days before the range (the range's own are present already).
    await ensure_days(ctx, f, f.date_from - timedelta(days=RULE.window_days), f.date_from - timedelta(days=1))
    found = await find_anomalies(
        ctx.db,
        dimension,
        f,
        metrics=tuple(AnomalyMetric) if metric is None else (metric,),
        min_spend=None if min_spend is None else Decimal(repr(min_spend)),
    )
    nodes = sorted(await _nodes(ctx, dimension, f, found), key=_order)
    if after is not None:
        start = _after(after, dimension)
        nodes = [node for node in nodes if _order(node) > start]
    page = nodes[:first]
    report = request.report
    skipped = {*report.open, *report.missing, *report.failures, *report.unverified}
    return AnomalyPage(
        total_count=len(found),
        nodes=page,
        has_next_page=len(nodes) > first,
        end_cursor=_cursor(page[-1]) if page else None,
        skipped_days=sorted(d for d in skipped if f.date_from <= d <= f.date_to),
    )


async def _nodes(
    ctx: Context, dimension: Dimension, f: FactFilter, found: list[Anomaly]
) -> list[AnomalyNode]:
    """Each anomaly with its entity's id and name, and its link (two directory lookups at most)."""
    ids, names = await identify(ctx.db, dimension, sorted({a.key for a in found}))
    filter_keys = None
    if f.api_keys is not None:
        key_ids, _ = await identify(ctx.db, Dimension.API_KEY, f.api_keys)
        filter_keys = tuple(sorted(key_ids.values()))
    nodes = []
    for a in found:
        entity = (ids[a.key],)
        link = LinkFilter(
            date_from=a.date,
            date_to=a.date,
            user_ids=entity if dimension is Dimension.USER else f.user_ids,
            api_key_ids=entity if dimension is Dimension.API_KEY else filter_keys,
            models=entity if dimension is Dimension.MODEL else f.models,
            providers=f.providers,
            team_ids=entity if dimension is Dimension.TEAM else f.team_ids,
        )
        nodes.append(AnomalyNode(a, ids[a.key], names.get(a.key), link))
    return nodes
