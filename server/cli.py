"""The ``usage-gateway`` command line (DESIGN §9)."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar

import click
import psycopg
import structlog
from psycopg_pool import PoolTimeout

from usage_gateway.datasources.daycache.days import RangeReport, days_between, plan_batches
from usage_gateway.migrations import apply_migrations
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.config import ENV_PREFIX, ConfigError, Settings, load_settings
from usage_gateway.server.database_check import DatabaseUnreachable, check_database, describe_failure
from usage_gateway.server.logs import configure_logging
from usage_gateway.server.progress import progress_reporter
from usage_gateway.server.resources import Resources

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from usage_gateway.datasources.exports.records import ExportDimension

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


def _require_web_assets(settings: Settings) -> None:
    """Exit with one line unless the browser pages' assets are installed (GraphiQL and the dashboard
    need them)."""
    from usage_gateway.server.web_assets import AssetsMissing, WebAssets

    if settings.graphiql or settings.dashboard:
        try:
            WebAssets(settings.web_assets_dir)
        except AssetsMissing as exc:
            raise click.ClickException(str(exc)) from None


def _require_database(settings: Settings, *, wait_seconds: float = 0) -> None:
    """Exit with one line (status 1) unless Postgres answers; with ``wait_seconds``, try again with a
    doubling pause until that much time has passed, saying so each time."""
    deadline = time.monotonic() + wait_seconds
    pause = 1.0
    while True:
        try:
            check_database(settings.database_url)
            return
        except DatabaseUnreachable as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                click.echo(str(exc), err=True)
                sys.exit(1)
            wait = min(pause, left)
            click.echo(f"{exc} (retrying in {wait:.0f} s)", err=True)
            time.sleep(wait)
            pause = min(2 * pause, 30.0)


def _with_resources(settings: Settings, work: Callable[[Resources], Awaitable[T]]) -> T:
    _require_database(settings)

    async def run() -> T:
        try:
            resources = await Resources.open(settings)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # Reachable a moment ago (``_require_database``), gone now.
            raise DatabaseUnreachable(describe_failure(settings.database_url, exc)) from None
        try:
            return await work(resources)
        finally:
            await resources.close()

    try:
        return asyncio.run(run())
    except DatabaseUnreachable as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


def _parse_day(_: click.Context, __: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date") from None


class _Command(click.Command):
    """Listed in ``usage-gateway --help`` with its whole first paragraph (click cuts it at ~45 characters)."""

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help or not self.help:
            return super().get_short_help_str(limit)
        return " ".join(inspect.cleandoc(self.help).split("\n\n", 1)[0].split())


class _Group(click.Group):
    command_class = _Command


@click.group(cls=_Group)
@click.version_option(package_name="usage-gateway", prog_name="usage-gateway")
def main() -> None:
    """usage-gateway: GraphQL analytics over LiteLLM usage."""


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = _settings()
    _require_database(settings)
    applied = apply_migrations(settings.database_url)
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@main.command()
@click.option("--from", "start", required=True, callback=_parse_day, help="first UTC day, YYYY-MM-DD")
@click.option("--to", "end", required=True, callback=_parse_day, help="last UTC day, inclusive")
@click.option(
    "--refresh",
    is_flag=True,
    help="read the range's closed days again too: for corrections made in LiteLLM after a day closed, or"
    " for days stored before an upgrade that stores more of each day (model groups, endpoints: 0009)",
)
def backfill(start: date, end: date, refresh: bool) -> None:
    """Fetch every missing or stale day of a range from LiteLLM into Postgres (--refresh: every day)."""
    if end < start:
        raise click.BadParameter("--to is before --from")
    settings = _settings()

    async def work(resources: Resources) -> list[RangeReport]:
        # Whole batches of nearby days, as queries ask for them: the day cache reads a batch model by
        # model in one pass, where single days would cost a pass each (a request per model and day).
        batches = plan_batches(days_between(start, min(end, resources.days.today())))
        reports: list[RangeReport] = []
        with progress_reporter("backfill", total=len(batches)) as advance:
            reads = [
                resources.days.refresh(b, reopen=True) if refresh else resources.days.ensure(b[0], b[-1])
                for b in batches
            ]
            for finished in asyncio.as_completed(reads):
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


def app_from_environment() -> Starlette:
    """The app built from the environment and ``.env``: the factory each ``serve --workers`` process runs."""
    from usage_gateway.server.app import create_app

    return create_app(_settings())


@main.command(
    epilog=f"Every setting is read from {ENV_PREFIX}* environment variables ({ENV_PREFIX}DATABASE_URL, "
    f"{ENV_PREFIX}LITELLM_URL, {ENV_PREFIX}JWT_SECRET, ...) or from a .env file in the working directory; "
    "the environment wins over .env, and --host and --port win over both. The README lists every setting."
)
@click.option(
    "--host", default=None, help=f"interface to listen on  [default: {ENV_PREFIX}HOST, else 127.0.0.1]"
)
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help=f"port to listen on  [default: {ENV_PREFIX}PORT, else 8000]",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="processes serving requests, each with its own connection pools and admission limits",
)
@click.option(
    "--wait-for-database",
    "wait_seconds",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="while Postgres is unreachable, retry with a doubling pause for up to this long",
)
def serve(host: str | None, port: int | None, workers: int, wait_seconds: float) -> None:
    """Serve the GraphQL API (uvicorn) on HOST:PORT."""
    settings = _settings()
    _require_web_assets(settings)
    _require_database(settings, wait_seconds=wait_seconds)
    import uvicorn

    from usage_gateway.server.app import create_app

    host, port = host or settings.host, settings.port if port is None else port
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
        return
    from usage_gateway.server.metrics import shared_across_workers

    # Several processes need the app as an import string (uvicorn imports it in each one); their metrics
    # are summed through a directory they share.
    with shared_across_workers(workers):
        uvicorn.run(
            f"{__name__}:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
        )


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


_TTL = re.compile(r"(\d{1,9})([smhd]?)")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TOKEN_TTL = timedelta(days=365)


def _parse_ttl(_: click.Context, __: click.Parameter, value: str) -> timedelta:
    match = _TTL.fullmatch(value.strip().lower())
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration such as 3600, 90m, 12h or 7d")
    seconds = int(match.group(1)) * _TTL_UNITS[match.group(2)]
    if not 0 < seconds <= MAX_TOKEN_TTL.total_seconds():
        raise click.BadParameter(f"{value!r}: a token lives more than 0 s and at most {MAX_TOKEN_TTL.days}d")
    return timedelta(seconds=seconds)


@main.command()
@click.option("--sub", required=True, help="the user id the token names: the directory's (LiteLLM's) user id")
@click.option(
    "--role",
    "roles",
    required=True,
    multiple=True,
    type=click.Choice([role.value for role in Role]),
    help="role claim (repeatable)",
)
@click.option(
    "--ttl", default="12h", show_default=True, callback=_parse_ttl, help="lifetime: seconds, or 90m, 12h, 7d"
)
def token(sub: str, roles: tuple[str, ...], ttl: timedelta) -> None:
    """Sign an HS256 token with USAGE_GATEWAY_JWT_SECRET, for teams without an identity provider; it is
    printed alone on stdout."""
    from usage_gateway.datasources.directory.lookups import is_pseudo_user
    from usage_gateway.server.tokens import issue_token

    if not sub.strip() or len(sub) > 256 or is_pseudo_user(sub):
        raise click.BadParameter(f"{sub!r} is not a user id", param_hint="'--sub'")
    settings = _settings()
    if settings.jwt_secret is None or not settings.jwt_secret.get_secret_value():
        if settings.jwt_jwks_url:
            raise click.ClickException(
                f"{ENV_PREFIX}JWT_JWKS_URL is set and {ENV_PREFIX}JWT_SECRET is not: this gateway accepts "
                "tokens from your identity provider, which issues them; this command only signs with a secret"
            )
        raise click.ClickException(f"{ENV_PREFIX}JWT_SECRET is not set: there is no secret to sign with")
    secret = settings.jwt_secret.get_secret_value()
    if len(secret.encode()) < 32:
        click.echo(f"warning: {ENV_PREFIX}JWT_SECRET is shorter than 32 bytes", err=True)
    click.echo(
        issue_token(secret, sub, roles, ttl, audience=settings.jwt_audience, issuer=settings.jwt_issuer)
    )


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


@main.command("alerts")
@click.option("--once", is_flag=True, help="Evaluate and post once, then exit (the only mode: schedule it).")
@click.option(
    "--dry-run", is_flag=True, help="Print the alerts that would be posted; post and record nothing."
)
def alerts_command(once: bool, dry_run: bool) -> None:
    """Post budget and anomaly alerts to ALERT_WEBHOOK_URL, each once (for cron or a Kubernetes CronJob).

    Budgets whose share used reached ALERT_BUDGET_THRESHOLDS (default 50,80,100 %) in their current
    period, and anomalies of users, keys, models and teams on the last ALERT_ANOMALY_DAYS days, as
    Slack-compatible JSON. What was sent is recorded, so the next run does not repeat it; a failed post
    is posted again by the next run. Exit status 0 when every post succeeded, 1 when some failed (named
    on stderr).
    """
    import httpx
    import orjson

    from usage_gateway.datasources.insights import alerts

    if not once:
        raise click.UsageError("pass --once: each run evaluates and posts once (schedule it with cron)")
    settings = _settings()
    url = settings.alert_webhook_url
    if url is None and not dry_run:
        raise click.ClickException(f"{ENV_PREFIX}ALERT_WEBHOOK_URL is not set (or use --dry-run)")

    async def work(resources: Resources) -> alerts.RunResult | list[alerts.Alert]:
        days = resources.days if resources.litellm is not None else None
        found = await alerts.evaluate(
            resources.db,
            days,
            resources.days.today(),
            settings.alert_budget_thresholds,
            settings.alert_anomaly_days,
            settings.max_range_days,
        )
        if dry_run or url is None:
            return await alerts.pending(resources.db, found)
        timeout = httpx.Timeout(settings.alert_webhook_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            return await alerts.deliver(resources.db, found, alerts.webhook(client, url.get_secret_value()))

    try:
        outcome = _with_resources(settings, work)
    except psycopg.errors.UndefinedTable as exc:
        raise click.ClickException(
            f"the database lacks a table ({exc.diag.message_primary}): run `usage-gateway migrate`"
        ) from None
    if isinstance(outcome, list):
        for alert in outcome:
            click.echo(orjson.dumps({"identity": alert.identity, **alert.body()}).decode())
        click.echo(f"{len(outcome)} alert(s) would be posted", err=True)
        return
    click.echo(
        f"alerts: {len(outcome.sent)} sent, {outcome.already_sent} sent before, {len(outcome.failed)} failed"
    )
    for alert, error in outcome.failed:
        click.echo(f"alert {alert.identity} not sent: {error} (posted again by the next run)", err=True)
    if outcome.failed:
        sys.exit(1)


def _parse_group_by(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    from usage_gateway.datasources.exports.records import ExportDimension

    names = tuple(part.strip().upper() for part in value.split(",") if part.strip())
    unknown = [name for name in names if name not in ExportDimension.__members__]
    if unknown:
        choices = ", ".join(name for name in ExportDimension.__members__ if name != "TAG")
        raise click.BadParameter(f"unknown dimension(s) {', '.join(unknown)}; choose from {choices}")
    if "TAG" in names:  # the command fetches user days only; the mutation fetches tag days too
        raise click.BadParameter("TAG is exported by the exportUsage mutation, which fetches tag days first")
    _check_side_export([ExportDimension(name) for name in names], [])
    return names


def _check_side_export(dimensions: list[ExportDimension], used: list[str]) -> None:
    """A grouping by model group, endpoint or MCP tool that cannot be exact, refused as the API refuses it."""
    from usage_gateway.errors import BadUserInput
    from usage_gateway.resolvers.side_rules import check_export

    try:
        check_export(dimensions, used)
    except BadUserInput as exc:
        raise click.BadParameter(exc.message) from None


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
    import os
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
    from usage_gateway.datasources.facts.known import seen_values
    from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter
    from usage_gateway.errors import BadUserInput
    from usage_gateway.resolvers.side_exports import check_side_export

    if end < start:
        raise click.BadParameter("--to is before --from")
    dimensions = [ExportDimension(name) for name in group_by]
    options = {"userIds": users, "apiKeyIds": api_keys, "models": models, "providers": providers}
    _check_side_export(dimensions, [name for name, values in options.items() if values])
    destination = Path(out)
    folder = destination.parent
    if not folder.is_dir():
        raise click.BadParameter(
            f"the directory {str(folder)!r} does not exist; create it first (export creates no directories)",
            param_hint="'--out'",
        )
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"the directory {str(folder)!r} is not writable", param_hint="'--out'")
    settings = _settings()
    if (end - start).days + 1 > settings.max_range_days:
        raise click.BadParameter(f"the range is longer than MAX_RANGE_DAYS ({settings.max_range_days} days)")
    bucket = re.compile(r"[0-9a-f]{64}|unattributed|raw:.+")

    async def work(resources: Resources) -> WrittenFile:
        # Every id is checked before LiteLLM is asked for a day or a file is opened.
        named_users = [user for user in users if not directory.is_pseudo_user(user)]
        missing = sorted(set(named_users) - await directory.users_exist(resources.db, named_users))
        if missing:
            raise click.BadParameter(f"unknown user(s): {', '.join(missing)}", param_hint="'--user'")
        known = await directory.api_keys_by_ids(resources.db, api_keys)
        unknown = [key for key in api_keys if key not in known and not bucket.fullmatch(key)]
        if unknown:
            raise click.BadParameter(f"unknown API key(s): {', '.join(unknown)}", param_hint="'--api-key'")
        today = resources.days.today()
        if start <= today:
            report = await resources.days.ensure(start, min(end, today))
            failed = sorted({*report.missing, *report.failures, *report.unverified})
            if failed and not allow_incomplete:
                shown = ", ".join(d.isoformat() for d in failed[:10])
                raise click.ClickException(
                    f"{len(failed)} day(s) could not be fetched or verified ({shown}); see --allow-incomplete"
                )
        f = FactFilter(
            start,
            end,
            user_ids=tuple(users) or None,
            api_keys=tuple(known[key].token_hash if key in known else key for key in api_keys) or None,
            models=tuple(models) or None,
            providers=tuple(providers) or None,
        )
        # Models and providers are known once seen on a stored day: checked now that the range's are.
        for values, column in ((models, Dimension.MODEL), (providers, Dimension.PROVIDER)):
            unseen = sorted(set(values) - await seen_values(resources.db, column, values))
            if unseen:
                option = f"--{column.name.lower()}"
                raise click.BadParameter(
                    f"unknown {option[2:]}(s), never seen in LiteLLM's usage: {', '.join(unseen)}",
                    param_hint=f"'{option}'",
                )
        try:  # a key bucket shared by several users, days stored before model groups were kept
            await check_side_export(resources.db, f, dimensions)
        except BadUserInput as exc:
            hint = "'--user'" if users else "'--group-by'"
            raise click.BadParameter(exc.message, param_hint=hint) from None
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of lines")
def doctor(as_json: bool) -> None:
    """Check the settings, then Postgres and its migrations, Redis and LiteLLM (reached, the master key's
    access, the clock): one line each, with a fix for each failure; exit 1 if any check fails.

    Each check has a timeout, so the command ends within seconds even when a host does not answer."""
    from usage_gateway.server.doctor import failed, render_json, render_text, run_checks

    checks = run_checks()
    click.echo(render_json(checks) if as_json else render_text(checks))
    sys.exit(1 if failed(checks) else 0)
