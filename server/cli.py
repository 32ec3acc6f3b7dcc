"""The ``usage-gateway`` command line (DESIGN §9)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

import click
import structlog

from datasources.days import RangeReport, days_between
from migrations import apply_migrations
from server.config import ConfigError, Settings, load_settings
from server.logs import configure_logging
from server.progress import progress_reporter
from server.resources import Resources

T = TypeVar("T")
log = structlog.get_logger("usage_gateway.cli")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    secret = settings.litellm_master_key.get_secret_value() if settings.litellm_master_key else ""
    configure_logging(settings, secrets=(secret,))
    return settings


def _with_resources(settings: Settings, work: Callable[[Resources], Awaitable[T]]) -> T:
    async def run() -> T:
        resources = await Resources.open(settings)
        try:
            return await work(resources)
        finally:
            await resources.close()

    return asyncio.run(run())


def _parse_day(_: click.Context, __: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from None


@click.group()
def main() -> None:
    """usage-gateway: GraphQL analytics over LiteLLM usage."""


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = _settings()
    applied = apply_migrations(settings.database_url)
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@main.command()
@click.option("--from", "start", required=True, callback=_parse_day, help="first UTC day, YYYY-MM-DD")
@click.option("--to", "end", required=True, callback=_parse_day, help="last UTC day, inclusive")
def backfill(start: date, end: date) -> None:
    """Fetch every missing or stale day of a range from LiteLLM into Postgres."""
    if end < start:
        raise click.BadParameter("--to is before --from")
    settings = _settings()

    async def work(resources: Resources) -> list[RangeReport]:
        days = days_between(start, min(end, resources.days.today()))
        reports: list[RangeReport] = []
        with progress_reporter("backfill", total=len(days)) as advance:
            for finished in asyncio.as_completed([resources.days.ensure(d, d) for d in days]):
                report = await finished
                reports.append(report)
                advance(", ".join(d.isoformat() for d in report.days))
        return reports

    reports = _with_resources(settings, work)
    failures = {d: why for r in reports for d, why in r.failures.items()}
    fetched = sum(len(r.fetched) for r in reports)
    click.echo(f"{len(reports)} day(s): {fetched} fetched, {len(failures)} failed")
    for day, why in sorted(failures.items()):
        click.echo(f"  {day.isoformat()}: {why}", err=True)
    sys.exit(1 if failures else 0)


@main.command("refresh-today")
def refresh_today() -> None:
    """Fetch the open days (today, and yesterday while it is still open) again now."""
    settings = _settings()

    async def work(resources: Resources) -> RangeReport:
        return await resources.days.refresh(resources.days.open_days())

    report = _with_resources(settings, work)
    for day in report.days:
        outcome = report.failures.get(day, "refreshed" if day in report.fetched else "unchanged")
        click.echo(f"{day.isoformat()}: {outcome}")
    click.echo("changed" if report.changed else "no change")
    sys.exit(1 if report.failures else 0)
