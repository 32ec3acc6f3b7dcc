"""Schemathesis in GraphQL mode against the gateway (introspection on for the test, served by uvicorn on
loopback with its own lifespan): a few hundred generated queries and mutations, none answered 5xx and none
with an error that is not one of our stable codes (an ``INTERNAL`` error counts as a failure too)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from tests.api_client import SECRET, DirectoryKey, DirectoryUser, seed_days, seed_directory, token_hash
from tests.facts_data import BASE, make_fact
from tests.facts_data import replace_facts as store_facts
from usage_gateway.datasources.db import Database
from usage_gateway.devtools.local_services import serving
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.tokens import issue_token

EXAMPLES_PER_OPERATION = 40
STABLE_CODES = {
    "BAD_USER_INPUT",
    "RANGE_TOO_LARGE",
    "FORBIDDEN",
    "NOT_FOUND",
    "QUERY_TOO_COMPLEX",
    "RATE_LIMITED",
    "UPSTREAM_UNAVAILABLE",
}
AUTH = {"Authorization": f"Bearer {issue_token(SECRET, 'root', ['admin'])}"}

# Dates near the seeded data half the time, anywhere in 1..9999 otherwise.
_near = st.dates(min_value=BASE - timedelta(days=60), max_value=BASE + timedelta(days=10))
schemathesis.graphql.scalar("Date", st.one_of(_near, st.dates()).map(date.isoformat).map(nodes.String))


@pytest.fixture
async def seeded(database_url: str) -> str:
    db = await Database.open(database_url, max_size=2)
    try:
        users = [DirectoryUser(f"user-{n}", f"User {n}") for n in range(5)]
        keys = [DirectoryKey(f"key-{n}", token_hash(f"key-{n}"), f"user-{n}") for n in range(5)]
        await seed_directory(db, users, keys)
        await seed_days(db, BASE - timedelta(days=60), BASE + timedelta(days=10))
        await store_facts(
            db,
            [
                make_fact(BASE - timedelta(days=d), user_id=f"user-{n}", api_key=token_hash(f"key-{n}"))
                for n in range(5)
                for d in range(0, 40, 3)
            ],
        )
    finally:
        await db.close()
    return database_url


@pytest.fixture
def gateway(seeded: str, tmp_path: Path) -> Iterator[str]:
    app = create_app(
        Settings(
            database_url=seeded,
            jwt_secret=SECRET,
            introspection=True,
            export_dir=tmp_path,
            rate_limit_cost=0,
            operation_timeout_seconds=10,
        )
    )
    with serving(app, lifespan="on") as base:
        yield base


def outcome(response: requests.Response) -> str:
    """``data``, the error codes, or the HTTP status: to see what the generated cases reached."""
    try:
        errors = response.json().get("errors") or ()
    except ValueError:
        return f"HTTP {response.status_code}"
    return ",".join(sorted({(e.get("extensions") or {}).get("code", "?") for e in errors})) or "data"


def problems(response: requests.Response) -> list[str]:
    if response.status_code >= 500:
        return [f"HTTP {response.status_code}: {response.text[:300]}"]
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return [f"HTTP {response.status_code} without JSON: {response.text[:300]}"]
    found = []
    for error in body.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        if code not in STABLE_CODES:
            found.append(f"{code}: {error.get('message')}")
    return found


# Schemathesis 4.32's GraphQL strategies use the `random` module, which Hypothesis deprecates.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_generated_operations_get_no_5xx_and_no_unmasked_error(gateway: str) -> None:
    schema = schemathesis.graphql.from_url(f"{gateway}/graphql", headers=AUTH, timeout=30)
    session = requests.Session()
    cases: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    failures: list[tuple[str, str, list[str]]] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]  # an invalid schema fails the test
    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(label: str, case: Any) -> None:
            response = case.call(base_url=f"{gateway}/graphql", session=session, headers=AUTH, timeout=30)
            cases[label] += 1
            outcomes[outcome(response)] += 1
            found = problems(response)
            if found:
                failures.append((label, str(case.body)[:500], found))

        run(f"{operation.label} ({mode.value})")
    print(
        f"schemathesis: {sum(cases.values())} cases over {len(cases)} operation × mode pairs;",
        f"outcomes {dict(outcomes)}",
    )
    assert failures == []
    assert len(cases) == 16
    assert sum(cases.values()) >= 400
