"""``usage-gateway demo``: the whole product on one machine with nothing configured.

It starts a private PostgreSQL (and Redis when ``redis-server`` exists), fills the gateway's directory,
serves a LiteLLM-compatible API over a seeded data set (:mod:`~usage_gateway.devtools.demo_data`) that
fails a few percent of requests as a real upstream does, and serves the gateway with GraphiQL and the
dashboard. It prints the URL and tokens, warms the day cache in the background, and on Ctrl-C or SIGTERM
stops everything it started and removes its temporary directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import httpx
import psycopg
import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from usage_gateway.datasources.directory.budgets import budget_rows
from usage_gateway.devtools.demo_data import DAYS, DemoData, generate
from usage_gateway.devtools.demo_queries import EXAMPLES, example_variables
from usage_gateway.devtools.litellm_compat import MASTER_KEY, Faults, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import (
    LocalPostgres,
    LocalRedis,
    LocalServiceError,
    redis_server_binary,
)
from usage_gateway.migrations import apply_migrations
from usage_gateway.server.app import create_app
from usage_gateway.server.config import ConfigError, Settings, load_settings
from usage_gateway.server.dashboard import DashboardStart, dashboard_response
from usage_gateway.server.graphiql import GraphiQLStart, graphiql_response
from usage_gateway.server.logs import configure_logging
from usage_gateway.server.tokens import issue_token
from usage_gateway.server.web_assets import WebAssets

TOKEN_TTL = timedelta(hours=24)
SECRET_FILE = Path("var/demo-jwt-secret")  # relative to the working directory, as the export folder is
GRAPHIQL_LOGIN_PATH = "/demo/graphiql"
DASHBOARD_LOGIN_PATH = "/demo/dashboard"
UPSTREAM_FAILURE_RATE = 0.02
_USER_COLUMNS = ("id", "username", "email", "role", "department", "created_at")
_BUDGET_COLUMNS = ("entity", "entity_id", "max_budget", "budget_duration", "budget_reset_at")
_KEY_COLUMNS = (
    "id", "user_id", "name", "key_alias", "token_hash", "litellm_user_id", "team_id",
    "created_at", "revoked_at",
)  # fmt: skip


class _StopSignals:
    """SIGINT/SIGTERM: before the gateway serves, abort the start-up (cleanup runs in ``finally``);
    once it serves, ask uvicorn to shut down gracefully. uvicorn installs its own handlers while it
    serves and re-raises the signal after its shutdown, which lands here and changes nothing."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self._aborting = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.server is not None:
            self.server.should_exit = True
        elif not self._aborting:  # a second Ctrl-C must not interrupt the cleanup
            self._aborting = True
            raise KeyboardInterrupt


@contextlib.contextmanager
def _handling_stop_signals() -> Iterator[_StopSignals]:
    handler = _StopSignals()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass(frozen=True)
class _Ready:
    """What the banner shows once the gateway listens."""

    url: str
    admin_token: str
    login_code: str
    dashboard_code: str
    user_id: str
    user_token: str
    today: date


class _Server(uvicorn.Server):
    """uvicorn's server, with an event for "listening" (``started`` is only a flag)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def run_demo(host: str, port: int, *, seed: int) -> int:
    """Run the demo until Ctrl-C or SIGTERM; the exit status (0 after a clean stop)."""
    started = time.monotonic()
    with _handling_stop_signals() as stop, contextlib.ExitStack() as cleanup:
        try:
            try:
                listener = _listen(host, port)  # first: a busy port fails before anything starts
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                print(
                    f"demo: port {port} on {host} is in use; choose another with --port "
                    f"(e.g. --port {port + 1 if 0 < port < 65535 else 8001}, or --port 0 for any free port)",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            cleanup.callback(listener.close)
            cleanup.callback(
                _say, "Stopped: gateway, LiteLLM server, Redis and PostgreSQL; temporary files removed."
            )
            data = generate(seed)
            _say(
                f"usage-gateway demo (seed {seed}): {len(data.users)} users, {len(data.keys)} keys, "
                f"{len(data.rows):,} LiteLLM daily rows over {DAYS} days"
            )
            postgres = LocalPostgres()
            cleanup.callback(postgres.stop)
            postgres.start()
            _say(f"  PostgreSQL  {postgres.url}  (data in {postgres.base_dir})")
            redis_url = _start_redis(cleanup)
            apply_migrations(postgres.url)
            fill_directory(postgres.url, data)
            store = LiteLLMStore(
                data.keys, data.users, data.rows, master_key=MASTER_KEY, tag_rows=data.tag_rows
            )
            store.set_teams(data.teams)
            faults = Faults(failure_rate=UPSTREAM_FAILURE_RATE, seed=seed)
            litellm_url = cleanup.enter_context(running_litellm(store, faults))
            failing = f"fails {UPSTREAM_FAILURE_RATE:.0%} of calls, the gateway retries"
            _say(f"  LiteLLM     {litellm_url}  (master key {MASTER_KEY}; {failing})")
            export_dir = Path(tempfile.mkdtemp(prefix="ug-demo-exports-"))
            cleanup.callback(shutil.rmtree, export_dir, ignore_errors=True)
            jwt_secret = demo_secret(SECRET_FILE)
            settings = load_settings(
                database_url=postgres.url,
                redis_url=redis_url,
                litellm_url=litellm_url,
                litellm_master_key=MASTER_KEY,
                graphiql=True,
                dashboard=True,
                introspection=True,
                jwt_secret=jwt_secret,
                host=host,
                port=listener.getsockname()[1],
                export_dir=export_dir,
                log_level=os.environ.get("USAGE_GATEWAY_LOG_LEVEL", "WARNING"),
            )
            configure_logging(settings)
            ready = _tokens(jwt_secret, settings, data)
            return asyncio.run(_serve(settings, listener, stop, ready, started))
        except KeyboardInterrupt:
            _say("interrupted during start-up; cleaning up")
            return 0
        except (LocalServiceError, ConfigError, OSError, subprocess.SubprocessError, psycopg.Error) as exc:
            print(f"demo: could not start: {exc}", file=sys.stderr, flush=True)
            return 1


def _say(line: str) -> None:
    print(line, flush=True)


def demo_secret(path: Path) -> str:
    """The demo's JWT secret, generated on the first run and kept (mode 0600) so that the tokens a run
    printed still work after a restart."""
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 64:
            path.chmod(0o600)
            return secret
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    temporary.replace(path)
    return secret


def _start_redis(cleanup: contextlib.ExitStack) -> str | None:
    if redis_server_binary() is None:
        _say("  Redis       not found: running without Redis (Postgres advisory locks, no answer cache)")
        return None
    redis = LocalRedis()
    cleanup.callback(redis.stop)
    redis.start()
    _say(f"  Redis       {redis.url}")
    return redis.url


def fill_directory(url: str, data: DemoData) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY users ({', '.join(_USER_COLUMNS)}) FROM STDIN") as copy:
            for user in data.directory_users:
                copy.write_row([user[column] for column in _USER_COLUMNS])
        with cursor.copy(f"COPY api_keys ({', '.join(_KEY_COLUMNS)}) FROM STDIN") as copy:
            for key in data.directory_keys:
                copy.write_row([key[column] for column in _KEY_COLUMNS])
        with cursor.copy("COPY teams (id, alias, deleted_at) FROM STDIN") as copy:
            for team in data.directory_teams:
                copy.write_row([team["id"], team["alias"], team["deleted_at"]])
        live_keys = [key for key in data.keys if not key.get("deleted")]
        with cursor.copy(f"COPY budgets ({', '.join(_BUDGET_COLUMNS)}) FROM STDIN") as copy:
            for budget in budget_rows(live_keys, data.users, data.teams):  # as syncDirectory reads them
                copy.write_row(budget)
        for move in data.team_moves:  # the triggers gave each key its current team from the start
            cursor.execute(
                "UPDATE api_key_teams SET team_id = %(before)s"
                " WHERE token_hash = %(token_hash)s AND valid_from = '-infinity'",
                move,
            )
            cursor.execute(
                "INSERT INTO api_key_teams (token_hash, valid_from, team_id)"
                " VALUES (%(token_hash)s, %(valid_from)s, %(team_id)s)",
                move,
            )


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket; with port 0 the system picks a free port (read it back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def _heavy_user(data: DemoData) -> str:
    """The directory user with the most spend on directory keys: the one worth a `user` token."""
    owners = {key["token_hash"]: key["user_id"] for key in data.directory_keys if key["user_id"]}
    spend: dict[str, float] = defaultdict(float)
    for row in data.rows:
        owner = owners.get(row["api_key"])
        if owner is not None:
            spend[owner] += row["spend"]
    return max(sorted(spend), key=spend.__getitem__)


def _tokens(secret: str, settings: Settings, data: DemoData) -> _Ready:
    admin = next(user["id"] for user in data.directory_users if user["role"] == "admin")
    heavy = _heavy_user(data)
    display_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    if ":" in display_host:
        display_host = f"[{display_host}]"
    return _Ready(
        url=f"http://{display_host}:{settings.port}/graphql",
        admin_token=issue_token(secret, admin, ["admin"], TOKEN_TTL),
        user_id=heavy,
        user_token=issue_token(secret, heavy, ["user"], TOKEN_TTL),
        login_code=secrets.token_urlsafe(16),
        dashboard_code=secrets.token_urlsafe(16),
        today=max(date.fromisoformat(row["date"]) for row in data.rows),
    )


def _examples_url(ready: _Ready) -> str:
    """GraphiQL (``server/static/graphiql-page.js``) reads its first query and variables from the URL."""
    variables = json.dumps(example_variables(ready.today, ready.user_id))
    return f"{ready.url}?q={quote(EXAMPLES, safe='')}&variables={quote(variables)}"


def login_url(ready: _Ready) -> str:
    return f"{ready.url.removesuffix('/graphql')}{GRAPHIQL_LOGIN_PATH}?code={ready.login_code}"


def dashboard_login_url(ready: _Ready) -> str:
    return f"{ready.url.removesuffix('/graphql')}{DASHBOARD_LOGIN_PATH}?code={ready.dashboard_code}"


class OneTimeLink:
    """``path?code=…`` answered once, by ``page()``; then, and for any other code, 410 with ``used``.
    Neither is cached or sent on as a referrer. Every other path goes on to ``app``."""

    def __init__(self, app: ASGIApp, path: str, code: str, page: Callable[[], Response], used: str) -> None:
        self.app = app
        self.path = path
        self.page = page
        self.used = used
        self._code: str | None = code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        code = request.query_params.get("code", "")
        if request.method != "GET" or self._code is None or not secrets.compare_digest(code, self._code):
            response: Response = HTMLResponse(self.used, status_code=410)
        else:
            self._code = None
            response = self.page()
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        await response(scope, receive, send)


def with_login_links(app: ASGIApp, ready: _Ready, assets: WebAssets) -> ASGIApp:
    """The demo's two one-time links: ``/demo/dashboard?code=…`` opens the dashboard with the admin token
    in its start-up block (the page keeps it in the browser's storage and shows ``/``), and
    ``/demo/graphiql?code=…`` opens GraphiQL with the admin header in its header editor (GraphiQL keeps
    it, as ``shouldPersistHeaders`` asks) and the example queries loaded, showing ``/graphql``. Either
    way the token is in no address and no log."""

    def graphiql() -> Response:
        headers = json.dumps({"Authorization": f"Bearer {ready.admin_token}"}, indent=2)
        location = "/graphql" + _examples_url(ready).split("/graphql", 1)[1]
        return graphiql_response(assets, GraphiQLStart(headers=headers, location=location))

    def dashboard() -> Response:
        return dashboard_response(assets, DashboardStart(token=ready.admin_token, location="/"))

    graphiql_link = OneTimeLink(
        app,
        GRAPHIQL_LOGIN_PATH,
        ready.login_code,
        graphiql,
        "<p>This GraphiQL link is not valid or was used already: it works once. The browser that opened"
        ' it keeps the header in GraphiQL (<a href="/graphql">/graphql</a>); elsewhere, paste the header'
        " the demo printed into GraphiQL's Headers tab.</p>",
    )
    return OneTimeLink(
        graphiql_link,
        DASHBOARD_LOGIN_PATH,
        ready.dashboard_code,
        dashboard,
        "<p>This dashboard link is not valid or was used already: it works once. The browser that opened"
        ' it stays signed in (<a href="/">the dashboard</a>); elsewhere, sign in there with the token the'
        " demo printed.</p>",
    )


def _banner(ready: _Ready, seconds: float) -> None:
    _say(f"\nReady in {seconds:.1f} s.")
    _say(f"Dashboard: {ready.url.removesuffix('/graphql')}/")
    _say(f"GraphiQL: {ready.url}")
    _say(f"Admin token: {ready.admin_token}")
    _say(f"User token ({ready.user_id}, role user): {ready.user_token}")
    hours = TOKEN_TTL.total_seconds() / 3600
    _say(f'In GraphiQL\'s Headers tab: {{"Authorization": "Bearer <token>"}} (tokens valid {hours:.0f} h).')
    _say(f"Tokens are signed with the secret in {SECRET_FILE} (kept across restarts; delete it to revoke).")
    _say("GraphiQL with the example queries and the admin header set (the link works once):")
    _say(login_url(ready))
    _say("The dashboard, signed in as the admin (the link works once):")
    _say(dashboard_login_url(ready))
    _say("Press Ctrl-C to stop.\n")


_WARM_QUERY = (
    "query Warm($from: Date!, $to: Date!) "
    "{ usage(filter: {from: $from, to: $to}) { freshness { missingDays } } }"
)


async def _warm_up(ready: _Ready, chunk_days: int, stopping: Callable[[], bool]) -> None:
    """Fetch every demo day once so that queries are answered from the cache.

    Newest days first (a first dashboard wants them too, and shares the fetches), a few days per
    request, so that a shutdown never waits for more than one short request."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {ready.admin_token}"}
    async with httpx.AsyncClient(timeout=600, headers=headers) as client:
        for newest in range(0, DAYS, chunk_days):
            if stopping():
                return
            last = ready.today - timedelta(days=newest)
            first = ready.today - timedelta(days=min(newest + chunk_days, DAYS) - 1)
            missing = await _missing_days(client, ready.url, first, last)
            if missing != []:
                seconds = time.monotonic() - started
                _say(f"Cache warm-up incomplete after {seconds:.1f} s: {missing or 'no usable answer'}.")
                return
    seconds = time.monotonic() - started
    _say(f"Cache warm: {DAYS} days fetched from LiteLLM in {seconds:.1f} s. GraphiQL: {ready.url}")


async def _missing_days(client: httpx.AsyncClient, url: str, first: date, last: date) -> list[str] | None:
    """``freshness.missingDays`` of the range, or None when the gateway gave no usable answer."""
    variables = {"from": first.isoformat(), "to": last.isoformat()}
    try:
        response = await client.post(url, json={"query": _WARM_QUERY, "variables": variables})
        return list(response.json()["data"]["usage"]["freshness"]["missingDays"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


async def _serve(
    settings: Settings, listener: socket.socket, stop: _StopSignals, ready: _Ready, started: float
) -> int:
    assets = WebAssets(settings.web_assets_dir)
    config = uvicorn.Config(
        with_login_links(create_app(settings), ready, assets),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        proxy_headers=False,
    )
    server = _Server(config)
    stop.server = server
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait((serving, listening), return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    if not server.started:
        await serving
        print("demo: the gateway did not start (see the log above)", file=sys.stderr, flush=True)
        return 1
    _banner(ready, time.monotonic() - started)
    warming = asyncio.create_task(
        _warm_up(ready, 2 * settings.litellm_concurrency, lambda: server.should_exit)
    )
    try:
        await serving
    finally:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
    return 0
