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
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = "postgresql://localhost/usage_gateway"
    redis_url: str | None = None
    litellm_url: str | None = None
    litellm_master_key: SecretStr | None = None
    litellm_concurrency: PositiveInt = 8
    litellm_page_size: Annotated[int, Field(ge=1, le=1000)] = 1000
    litellm_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    litellm_retries: Annotated[int, Field(ge=0, le=10)] = 4
    today_ttl_seconds: PositiveInt = 300
    close_after_hours: Annotated[float, Field(ge=0)] = 2.0
    max_range_days: PositiveInt = 400
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Clock skew tolerated on `exp`, `nbf` and `iat`.
    jwt_leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    # How long a fetched JWKS is trusted, and the least time between two refetches caused by an unknown
    # `kid` (so tokens with made-up key ids cannot make the gateway hammer the identity provider).
    jwt_jwks_cache_seconds: Annotated[float, Field(gt=0)] = 300.0
    jwt_jwks_refresh_seconds: Annotated[float, Field(ge=0)] = 30.0
    jwt_jwks_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    export_dir: Path = Path("var/exports")
    export_ttl_hours: PositiveInt = 24
    # Download links (``Export.downloadUrl``): the base URL they start with (unset: each request's own,
    # from its Host header), the key their tokens are signed with (unset: derived from JWT_SECRET, else
    # random per process) and how long each link lives at most (never past its export's expiry).
    public_url: str | None = None
    download_signing_key: SecretStr | None = None
    download_link_ttl_seconds: PositiveInt = 3600
    graphiql: bool = False
    introspection: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.CONSOLE
    db_pool_size: PositiveInt = 10
    # Postgres cancels any one statement that runs longer (0: no limit).
    db_statement_timeout_seconds: Annotated[float, Field(ge=0)] = 30.0
    # Query limits (issue 5): over any of them a request is answered QUERY_TOO_COMPLEX.
    max_query_depth: PositiveInt = 10
    max_query_aliases: PositiveInt = 30
    max_query_tokens: PositiveInt = 2000
    max_query_cost: PositiveInt = 50_000
    max_body_bytes: PositiveInt = 65_536
    operation_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Per subject, the query cost allowed in each window (0: no rate limit; it needs REDIS_URL).
    rate_limit_cost: Annotated[int, Field(ge=0)] = 500_000
    rate_limit_window_seconds: PositiveInt = 60
    # How long a query's answer may be served from Redis (0: no answer cache; it needs REDIS_URL).
    answer_cache_ttl_seconds: Annotated[int, Field(ge=0)] = 300
    # Admission control of POST /graphql (issue 12): at most this many operations run at once (0: no
    # admission control), this many more wait in arrival order, each at most this long (keep it well under
    # OPERATION_TIMEOUT_SECONDS); any other is answered 503 OVERLOADED with Retry-After. Answer-cache hits
    # and refused requests take no slot. One process runs its operations' Python on one core: a few at
    # once overlap their SQL, more only interleave them (10 dashboards at once timed out on 2 cores).
    max_concurrent_operations: Annotated[int, Field(ge=0)] = 4
    max_queued_operations: Annotated[int, Field(ge=0)] = 50
    max_queue_wait_seconds: Annotated[float, Field(gt=0)] = 5.0
    migrate_on_start: bool = False
    metrics_enabled: bool = True
    """Serve Prometheus metrics on `GET /metrics` (see docs/metrics.md)."""
    metrics_token: SecretStr | None = None
    """A bearer token `GET /metrics` then requires (`Authorization: Bearer <token>`). Unset: open to
    anyone who reaches the port, for a scraper on the internal network."""
    # Origins a browser front end may call the API from: a comma-separated allow-list (empty: no CORS).
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

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

    @field_validator("metrics_token")
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
