"""The ``usage-gateway`` command line (DESIGN §9)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

import click
import structlog

from usage_gateway.datasources.daycache.days import RangeReport, days_between, plan_batches
from usage_gateway.migrations import apply_migrations
from usage_gateway.server.config import ConfigError, Settings, load_settings
from usage_gateway.server.logs import configure_logging
from usage_gateway.server.progress import progress_reporter
from usage_gateway.server.resources import Resources

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
        # Whole batches of nearby days, as queries ask for them: the day cache reads a batch model by
        # model in one pass, where single days would cost a pass each (a request per model and day).
        batches = plan_batches(days_between(start, min(end, resources.days.today())))
        reports: list[RangeReport] = []
        with progress_reporter("backfill", total=len(batches)) as advance:
            for finished in asyncio.as_completed([resources.days.ensure(b[0], b[-1]) for b in batches]):
                report = await finished
                reports.append(report)
                advance(f"{report.days[0].isoformat()} … {report.days[-1].isoformat()}")
        return reports

    reports = _with_resources(settings, work)
    failures = {d: why for r in reports for d, why in r.failures.items()}
    unverified = sorted({d for r in reports for d in r.unverified})
    days, fetched = sum(len(r.days) for r in reports), sum(len(r.fetched) for r in reports)
    click.echo(f"{days} day(s): {fetched} fetched, {len(failures)} failed, {len(unverified)} unverified")
    for day, why in sorted(failures.items()):
        click.echo(f"  {day.isoformat()}: {why}", err=True)
    for day in unverified:
        click.echo(f"  {day.isoformat()}: stored, but not equal to LiteLLM's totals (see the logs)", err=True)
    sys.exit(1 if failures or unverified else 0)


@main.command("refresh-today")
def refresh_today() -> None:
    """Fetch the open days (today, and yesterday while it is still open) again now."""
    settings = _settings()

    async def work(resources: Resources) -> RangeReport:
        return await resources.days.refresh(resources.days.open_days())

    report = _with_resources(settings, work)
    for day in report.days:
        outcome = report.failures.get(day, "refreshed" if day in report.fetched else "unchanged")
        if day in report.unverified:
            outcome += ", unverified: not equal to LiteLLM's totals (see the logs)"
        click.echo(f"{day.isoformat()}: {outcome}")
    click.echo("changed" if report.changed else "no change")
    sys.exit(1 if report.failures else 0)


@main.command("export-schema")
@click.option(
    "--check",
    "check",
    type=click.Path(dir_okay=False),
    default=None,
    help="Compare with this file instead of printing; exit 1 with a diff if it differs.",
)
def export_schema(check: str | None) -> None:
    """Print the GraphQL schema as SDL (the committed copy is schema/schema.graphql)."""
    import difflib
    from pathlib import Path

    from usage_gateway.schema.schema import schema_sdl

    sdl = schema_sdl()
    if check is None:
        click.echo(sdl, nl=False)
        return
    path = Path(check)
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    if committed == sdl:
        click.echo(f"{check} matches the schema")
        return
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True), sdl.splitlines(keepends=True), check, "the schema in the code"
    )
    click.echo("".join(diff), nl=False, err=True)
    click.echo(f"{check} is out of date: run `usage-gateway export-schema > {check}`", err=True)
    sys.exit(1)


@main.command()
def serve() -> None:
    """Serve the GraphQL API on HOST:PORT."""
    import uvicorn

    from usage_gateway.server.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface the gateway listens on")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port"
)
@click.option("--seed", default=7, show_default=True, type=int, help="seed of the generated data set")
def demo(host: str, port: int, seed: int) -> None:
    """Run the whole product locally on generated data: PostgreSQL, Redis (when installed), a
    LiteLLM-compatible server and the gateway with GraphiQL. Needs nothing configured; Ctrl-C stops it."""
    from usage_gateway.devtools.demo import run_demo

    sys.exit(run_demo(host, port, seed=seed))


def _cli_actor() -> str:
    """Who runs a command, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@main.command("sync-directory")
def sync_directory_command() -> None:
    """Bring LiteLLM's users and keys into the directory (nothing is deleted; keys gone are revoked)."""
    from dataclasses import asdict

    from usage_gateway.datasources import audit
    from usage_gateway.datasources.directory.sync import SyncCounts, sync_directory
    from usage_gateway.errors import GatewayError

    settings = _settings()

    async def work(resources: Resources) -> SyncCounts:
        if resources.litellm is None:
            raise click.ClickException("USAGE_GATEWAY_LITELLM_URL is not set")
        try:
            counts = await sync_directory(resources.db, resources.litellm, redis=resources.redis)
        except GatewayError as exc:
            await audit.record(
                resources.db, actor=_cli_actor(), action="syncDirectory", arguments={}, outcome="failed",
                detail={"error": exc.message},
            )  # fmt: skip
            raise click.ClickException(exc.message) from None
        await audit.record(
            resources.db, actor=_cli_actor(), action="syncDirectory", arguments={}, outcome="ok",
            detail=asdict(counts),
        )  # fmt: skip
        return counts

    counts = _with_resources(settings, work)
    for name, value in asdict(counts).items():
        click.echo(f"{name.replace('_', ' ')}: {value}")


def _parse_group_by(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    from usage_gateway.datasources.exports.records import ExportDimension

    names = tuple(part.strip().upper() for part in value.split(",") if part.strip())
    unknown = [name for name in names if name not in ExportDimension.__members__]
    if unknown:
        choices = ", ".join(ExportDimension.__members__)
        raise click.BadParameter(f"unknown dimension(s) {', '.join(unknown)}; choose from {choices}")
    return names


@main.command()
@click.option("--from", "start", required=True, callback=_parse_day, help="first UTC day, YYYY-MM-DD")
@click.option("--to", "end", required=True, callback=_parse_day, help="last UTC day, inclusive")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["CSV", "JSON", "NDJSON", "XLSX", "PARQUET"], case_sensitive=False),
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="file to write")
@click.option("--user", "users", multiple=True, help="only this user id (repeatable)")
@click.option("--api-key", "api_keys", multiple=True, help="only this key: directory id or token hash")
@click.option("--model", "models", multiple=True, help="only this model (repeatable)")
@click.option("--provider", "providers", multiple=True, help="only this provider (repeatable)")
@click.option(
    "--group-by",
    "group_by",
    default="DATE,USER,API_KEY,MODEL,PROVIDER",
    show_default=True,
    callback=_parse_group_by,
    help="dimensions of a row, comma separated",
)
@click.option(
    "--allow-incomplete", is_flag=True, help="export even if some days could not be fetched or verified"
)
def export(
    start: date,
    end: date,
    fmt: str,
    out: str,
    users: tuple[str, ...],
    api_keys: tuple[str, ...],
    models: tuple[str, ...],
    providers: tuple[str, ...],
    group_by: tuple[str, ...],
    allow_incomplete: bool,
) -> None:
    """Write usage rows grouped by dimensions, with every metric, to a file (CSV, JSON, NDJSON, XLSX,
    Parquet). The days of the range are fetched first if missing or stale."""
    import contextlib
    import re
    from pathlib import Path

    from usage_gateway.datasources import audit
    from usage_gateway.datasources.directory import lookups as directory
    from usage_gateway.datasources.exports.query import filter_to_json
    from usage_gateway.datasources.exports.records import (
        FETCH_ROWS,
        ExportDimension,
        ExportFormat,
        WrittenFile,
        write_export,
    )
    from usage_gateway.datasources.facts.vocabulary import FactFilter

    if end < start:
        raise click.BadParameter("--to is before --from")
    settings = _settings()
    if (end - start).days + 1 > settings.max_range_days:
        raise click.BadParameter(f"the range is longer than MAX_RANGE_DAYS ({settings.max_range_days} days)")
    destination = Path(out)
    bucket = re.compile(r"[0-9a-f]{64}|unattributed|raw:.+")

    async def work(resources: Resources) -> WrittenFile:
        today = resources.days.today()
        if start <= today:
            report = await resources.days.ensure(start, min(end, today))
            failed = sorted({*report.missing, *report.failures, *report.unverified})
            if failed and not allow_incomplete:
                shown = ", ".join(d.isoformat() for d in failed[:10])
                raise click.ClickException(
                    f"{len(failed)} day(s) could not be fetched or verified ({shown}); see --allow-incomplete"
                )
        known = await directory.api_keys_by_ids(resources.db, api_keys)
        unknown = [key for key in api_keys if key not in known and not bucket.fullmatch(key)]
        if unknown:
            raise click.BadParameter(f"unknown API key(s): {', '.join(unknown)}", param_hint="--api-key")
        f = FactFilter(
            start,
            end,
            user_ids=tuple(users) or None,
            api_keys=tuple(known[key].token_hash if key in known else key for key in api_keys) or None,
            models=tuple(models) or None,
            providers=tuple(providers) or None,
        )
        dimensions = [ExportDimension(name) for name in group_by]
        destination.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            advance: list[Callable[[str], None]] = []

            def progress(written: int, total: int) -> None:
                if not advance:
                    batches = -(-total // FETCH_ROWS)
                    advance.append(stack.enter_context(progress_reporter("export", total=batches)))
                advance[0](f"{written} of {total} rows")

            result = await write_export(
                resources.db, f, ExportFormat(fmt.upper()), dimensions, destination, on_progress=progress
            )
        await audit.record(
            resources.db,
            actor=_cli_actor(),
            action="exportUsage",
            arguments={
                "filter": filter_to_json(f),
                "format": fmt.upper(),
                "groupBy": list(group_by),
                "out": out,
            },
            outcome="ok",
            detail={"rows": result.rows, "bytes": result.byte_size, "sha256": result.sha256},
        )
        return result

    result = _with_resources(settings, work)
    click.echo(f"{destination}: {result.rows} rows, {result.byte_size} bytes, sha256 {result.sha256}")
