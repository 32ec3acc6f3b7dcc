from __future__ import annotations

import threading

import psycopg

from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations, available


def _fresh_database(server: LocalPostgres, name: str) -> str:
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return server.url_for(name)


def test_migrations_apply_in_order_and_are_recorded(postgres_server: LocalPostgres) -> None:
    url = _fresh_database(postgres_server, "mig_order")
    applied = apply_migrations(url)
    assert applied == [m.name for m in available()]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(m.version, m.name) for m in available()]


def test_running_migrations_twice_is_a_no_op(postgres_server: LocalPostgres) -> None:
    url = _fresh_database(postgres_server, "mig_twice")
    apply_migrations(url)
    assert apply_migrations(url) == []


def test_two_concurrent_runners_apply_each_migration_once(postgres_server: LocalPostgres) -> None:
    url = _fresh_database(postgres_server, "mig_concurrent")
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(apply_migrations(url))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(name for result in results for name in result) == [m.name for m in available()]
