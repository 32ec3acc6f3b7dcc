"""Settings from the environment (prefix ``USAGE_GATEWAY_``) and an optional ``.env`` file."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "USAGE_GATEWAY_"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class ConfigError(Exception):
    """Bad configuration: the message is one line that names the variable."""


PositiveInt = Annotated[int, Field(gt=0)]

_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")

# A base URL for download links: scheme, host, optional port and path prefix (a reverse proxy's).
_PUBLIC_URL = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^?#\s]*)?")


def _origin(item: str) -> str:
    """One CORS origin as a browser sends it in ``Origin``: scheme, host, optional port, no path."""
    origin = item.strip().lower().removesuffix("/")
    if origin == "*":
        raise ValueError(
            "'*' is refused: list each origin (e.g. https://app.example.com); a wildcard would let every"
            " web site call the API with its visitors' browsers"
        )
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(f"{item.strip()!r} is not an origin like https://app.example.com (no path)")
    return origin


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,  # each field's docstring is its description (docs/configuration.md)
    )

    database_url: str = "postgresql://localhost/usage_gateway"
    """Postgres, a database of the gateway's own: the durable tier (day facts), the directory, exports."""
    redis_url: str | None = None
    """Redis: the hot tier (freshness markers), per-day locks, the answer cache and the rate limit.
    Optional: without it Postgres answers and advisory locks keep fetches single."""
    litellm_url: str | None = None
    """LiteLLM proxy base URL. Unset: only days already stored are served."""
    litellm_master_key: SecretStr | None = None
    """Key for LiteLLM's management API: the master key or a `proxy_admin` user's key. Never logged."""
    litellm_concurrency: PositiveInt = 8
    """Requests in flight to LiteLLM per process."""
    litellm_page_size: Annotated[int, Field(ge=1, le=1000)] = 1000
    """Rows per `/user/daily/activity` page."""
    litellm_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    """Timeout of one request to LiteLLM."""
    litellm_retries: Annotated[int, Field(ge=0, le=10)] = 4
    """Retries of a LiteLLM request on timeouts, connection errors, 5xx and broken JSON (never on 4xx)."""
    today_ttl_seconds: PositiveInt = 300
    """How long an open day (today, yesterday until it closes) is served before it is fetched again."""
    close_after_hours: Annotated[float, Field(ge=0)] = 2.0
    """A day fetched and verified at least this long after its end (UTC midnight) is closed for good."""
    max_range_days: PositiveInt = 400
    """Longest range, in days, a query or an export may ask for."""
    jwt_secret: SecretStr | None = None
    """HS256 key that verifies tokens and signs them with `usage-gateway token`."""
    jwt_jwks_url: str | None = None
    """An identity provider's JWKS URL: tokens signed with RS256 or ES256 by its keys are accepted."""
    jwt_audience: str | None = None
    """The `aud` claim tokens must carry. Unset: a token that carries any `aud` is refused."""
    jwt_issuer: str | None = None
    """The `iss` claim tokens must carry (unset: not checked)."""
    jwt_leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Clock skew tolerated on `exp`, `nbf` and `iat`."""
    # The refresh floor keeps tokens with made-up key ids from making the gateway hammer the provider.
    jwt_jwks_cache_seconds: Annotated[float, Field(gt=0)] = 300.0
    """How long a fetched JWKS is trusted."""
    jwt_jwks_refresh_seconds: Annotated[float, Field(ge=0)] = 30.0
    """Least time between two JWKS refetches caused by an unknown `kid`."""
    jwt_jwks_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    """Timeout of a JWKS fetch."""
    export_dir: Path = Path("var/exports")
    """Where export files are written (replicas must share it)."""
    export_ttl_hours: PositiveInt = 24
    """When export files expire."""
    public_url: str | None = None
    """Base URL of download links (`https://usage.example.com`, a reverse proxy's path prefix allowed).
    Unset: each request's own, from its Host header, which clients can set to anything."""
    download_signing_key: SecretStr | None = None
    """Key (at least 32 bytes) of the download links' HMAC. Unset: derived from JWT_SECRET; neither set:
    random per process, so links fail on another replica or after a restart."""
    download_link_ttl_seconds: PositiveInt = 3600
    """Longest life of a download link; never past its export's expiry."""
    graphiql: bool = False
    """Serve GraphiQL on `GET /graphql`."""
    dashboard: bool = False
    """Serve the admin usage dashboard on `GET /` (a page on the public GraphQL API; the demo turns it on)."""
    web_assets_dir: Path | None = None
    """Where the browser pages' npm packages are. Unset: `web/node_modules` of the checkout."""
    introspection: bool = False
    """Allow introspection queries (GraphiQL turns them on too)."""
    host: str = "127.0.0.1"
    """Address `serve` listens on (`serve --host` overrides it)."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """Port `serve` listens on (`serve --port` overrides it)."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    log_format: LogFormat = LogFormat.CONSOLE
    """`json` for machine-readable logs, one object a line; `console` for people."""
    db_pool_size: PositiveInt = 10
    """Postgres connections per process (raised to 2 × LITELLM_CONCURRENCY + 4 if that is more)."""
    db_statement_timeout_seconds: Annotated[float, Field(ge=0)] = 30.0
    """Postgres cancels any one statement of the server's sessions that runs longer (0: no limit)."""
    max_query_depth: PositiveInt = 10
    """Deepest nesting of fields in a document (beyond: QUERY_TOO_COMPLEX)."""
    max_query_aliases: PositiveInt = 30
    """Aliased fields per document (beyond: QUERY_TOO_COMPLEX)."""
    max_query_tokens: PositiveInt = 2000
    """Tokens, comments included, per document (beyond: QUERY_TOO_COMPLEX)."""
    max_query_cost: PositiveInt = 50_000
    """Estimated cost per operation (beyond: QUERY_TOO_COMPLEX); see the README's "Access and limits"."""
    max_body_bytes: PositiveInt = 65_536
    """Request body size (beyond: HTTP 413)."""
    operation_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    """An operation running longer is cut short (counted from when it got its slot)."""
    rate_limit_cost: Annotated[int, Field(ge=0)] = 500_000
    """Query cost each user may spend per window, counted in Redis (0: no rate limit; none without Redis)."""
    rate_limit_window_seconds: PositiveInt = 60
    """The rate limit's window."""
    answer_cache_ttl_seconds: Annotated[int, Field(ge=0)] = 300
    """Longest time a query's answer is served from Redis (0: no answer cache; none without Redis)."""
    # Admission control (issue 12): one process runs its operations' Python on one core: a few at once
    # overlap their SQL, more only interleave them (10 dashboards at once timed out on 2 cores).
    max_concurrent_operations: Annotated[int, Field(ge=0)] = 4
    """Operations of `POST /graphql` run at once per process (0: no admission control). Answer-cache hits
    and refused requests take no slot."""
    max_queued_operations: Annotated[int, Field(ge=0)] = 50
    """More operations wait for a slot in arrival order; beyond that, HTTP 503 OVERLOADED with
    Retry-After at once."""
    max_queue_wait_seconds: Annotated[float, Field(gt=0)] = 5.0
    """Longest wait for a slot, then HTTP 503 OVERLOADED with Retry-After (keep it well under
    OPERATION_TIMEOUT_SECONDS)."""
    migrate_on_start: bool = False
    """Apply pending migrations when the server starts (in each worker) and when a command such as
    `backfill` or `sync-directory` opens its connections."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics on `GET /metrics` (see docs/metrics.md)."""
    metrics_token: SecretStr | None = None
    """A bearer token `GET /metrics` then requires (`Authorization: Bearer <token>`). Unset: open to
    anyone who reaches the port, for a scraper on the internal network."""
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins a browser front end may call the API from, comma-separated (empty: no CORS; `*` is
    refused)."""
    alert_webhook_url: SecretStr | None = None
    """Where `usage-gateway alerts --once` posts budget and anomaly alerts: a Slack-compatible incoming
    webhook (Slack, Mattermost, Rocket.Chat, …; JSON `{"text", "blocks"}`). Secret (its path is the
    webhook's credential): never logged. Unset: `alerts` runs only with `--dry-run`."""
    alert_budget_thresholds: Annotated[tuple[int, ...], NoDecode] = (50, 80, 100)
    """Shares of a budget, in percent and comma-separated, at which `alerts` posts: once per budget,
    period and threshold (thresholds crossed at once are one alert)."""
    alert_anomaly_days: Annotated[int, Field(ge=0, le=28)] = 2
    """How many of the last days (up to yesterday) `alerts` checks for anomalies of users, keys, models
    and teams; 0: budget alerts only."""
    alert_webhook_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    """How long `alerts` waits for the webhook to answer a post; a post that times out is retried by
    the next run."""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("must be a comma-separated list of origins")
        return tuple(_origin(str(item)) for item in items if str(item).strip())

    @field_validator("alert_budget_thresholds", mode="before")
    @classmethod
    def _percentages(cls, value: object) -> tuple[int, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("must be comma-separated percentages, e.g. 50,80,100")
        try:
            found = sorted({int(str(item).strip()) for item in items if str(item).strip()})
        except ValueError:
            raise ValueError("must be comma-separated whole percentages, e.g. 50,80,100") from None
        if not found or not all(0 < p <= 1000 for p in found):
            raise ValueError("must list percentages between 1 and 1000, e.g. 50,80,100")
        return tuple(found)

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _PUBLIC_URL.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a base URL like https://usage.example.com (no query or fragment)"
            )
        return value.rstrip("/")

    @field_validator("download_signing_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value().encode()) < 32:
            raise ValueError("must have at least 32 bytes")
        return value

    @field_validator("metrics_token", "alert_webhook_url")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("redis_url", "litellm_url", "jwt_jwks_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one clear line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic-settings takes field values as kwargs
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigError(f"{ENV_PREFIX}{field.upper()}: {first['msg']}") from None
