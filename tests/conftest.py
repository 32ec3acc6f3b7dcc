"""Real PostgreSQL and Redis for the suite, started once per run on loopback.

Every test that asks for ``database_url`` gets a fresh database cloned from a migrated template;
every test that asks for ``redis_url`` gets a flushed Redis.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest
import redis

from usage_gateway.devtools.local_services import LocalPostgres, LocalRedis
from usage_gateway.migrations import apply_migrations

TEMPLATE_DB = "ug_template"
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    server = LocalPostgres().start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        apply_migrations(server.url_for(TEMPLATE_DB))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = LocalRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres_server: LocalPostgres) -> Iterator[str]:
    name = f"test_{next(_database_numbers)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield postgres_server.url_for(name)
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> str:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
