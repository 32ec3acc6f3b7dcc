"""The LiteLLM-compatible server beyond the golden replay: fault injection, the live day, the request
log, ``/user/daily/activity/aggregated`` against merged pages, and auth scoping of virtual keys."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.litellm_rows import API_KEYS, DAYS, assert_close, make_row, merge_pages, rows_strategy
from usage_gateway.devtools.litellm_compat import (
    MASTER_KEY,
    Faults,
    LiteLLMStore,
    hash_token,
    running_litellm,
)
from usage_gateway.devtools.litellm_compat.faults import SKEW

ACTIVITY = "/user/daily/activity"
AGGREGATED = "/user/daily/activity/aggregated"
RANGE = {"start_date": DAYS[0], "end_date": DAYS[-1]}
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}

ALICE_KEY, SVC_KEY, ROOT_KEY = "sk-alice-0001", "sk-service-0002", "sk-root-0003"
KEYS: list[dict[str, Any]] = [
    {"raw_key": ALICE_KEY, "token": hash_token(ALICE_KEY), "key_alias": "alice", "user_id": "alice"},
    {"raw_key": SVC_KEY, "token": hash_token(SVC_KEY), "key_alias": "svc", "user_id": None},
    {"raw_key": ROOT_KEY, "token": hash_token(ROOT_KEY), "key_alias": "root", "user_id": "root"},
]
USERS: list[dict[str, Any]] = [
    {
        "user_id": "alice",
        "user_alias": "Alice",
        "user_email": "alice@acme.test",
        "user_role": "internal_user",
    },
    {"user_id": "root", "user_alias": "Root", "user_email": None, "user_role": "proxy_admin"},
]


def sample_rows() -> list[dict[str, Any]]:
    rows = []
    for day_index, day in enumerate(DAYS):
        for user_index, (user, key) in enumerate((("alice", KEYS[0]["token"]), ("bob", "b" * 64), ("", ""))):
            rows.append(
                make_row(
                    day,
                    user,
                    key,
                    "gpt-4o",
                    "openai",
                    spend=0.01 * (day_index + 1) + 0.001 * user_index,
                    prompt_tokens=100,
                    completion_tokens=40,
                    successful_requests=3,
                    failed_requests=user_index % 2,
                )
            )
    return rows


@dataclass
class Served:
    store: LiteLLMStore
    faults: Faults
    client: httpx.Client
    base_url: str


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    """One server for the module; ``served`` puts it back in its initial state for each test."""
    store = LiteLLMStore(keys=KEYS, users=USERS, rows=sample_rows())
    faults = Faults()
    with running_litellm(store, faults) as base_url, httpx.Client(base_url=base_url, headers=ADMIN) as client:
        yield Served(store, faults, client, base_url)


@pytest.fixture
def served(server: Served) -> Served:
    server.faults.reset()
    server.store.set_keys(KEYS)
    server.store.set_users(USERS)
    server.store.set_rows(sample_rows())
    server.store.clear_log()
    return server


def day_metrics(body: dict[str, Any], day: str) -> dict[str, Any]:
    return next(result["metrics"] for result in body["results"] if result["date"] == day)


# -- fault injection ------------------------------------------------------------------------------


def test_fail_next_answers_500_then_recovers(served: Served) -> None:
    served.faults.fail_next = 2
    statuses = [served.client.get(ACTIVITY, params=RANGE).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert served.faults.fail_next == 0


def test_fail_status_is_configurable(served: Served) -> None:
    served.faults.fail_next, served.faults.fail_status = 1, 503
    response = served.client.get(ACTIVITY, params=RANGE)
    assert response.status_code == 503
    assert response.json() == {"detail": {"error": "Failed to fetch analytics: injected fault"}}


def test_failure_rate_is_seeded(served: Served) -> None:
    served.faults.reset(failure_rate=0.5, seed=7)
    rng = random.Random(7)
    expected = [500 if rng.random() < 0.5 else 200 for _ in range(12)]
    statuses = [served.client.get(ACTIVITY, params=RANGE).status_code for _ in range(12)]
    assert statuses == expected
    assert {200, 500} <= set(statuses)
    served.faults.failure_rate = 0.0
    assert served.client.get(ACTIVITY, params=RANGE).status_code == 200


def test_malformed_next_sends_truncated_json(served: Served) -> None:
    served.faults.malformed_next = 1
    broken = served.client.get(ACTIVITY, params=RANGE)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert served.client.get(ACTIVITY, params=RANGE).json()["metadata"]["total_api_requests"] == 30


def test_timeout_next_hangs_past_the_client_timeout(served: Served) -> None:
    served.faults.timeout_next, served.faults.hang_seconds = 1, 20.0
    with pytest.raises(httpx.ReadTimeout):
        served.client.get(ACTIVITY, params=RANGE, timeout=0.3)
    started = time.monotonic()
    assert served.client.get(ACTIVITY, params=RANGE, timeout=5).status_code == 200
    assert time.monotonic() - started < 2


def test_hanging_request_does_not_delay_shutdown() -> None:
    store = LiteLLMStore(keys=KEYS, users=USERS, rows=sample_rows())
    faults = Faults(timeout_next=1, hang_seconds=30.0)
    with running_litellm(store, faults) as base_url, httpx.Client(base_url=base_url, headers=ADMIN) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(ACTIVITY, params=RANGE, timeout=0.2)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3


def test_latency_delays_every_request(served: Served) -> None:
    served.faults.latency_seconds = 0.25
    started = time.monotonic()
    for _ in range(2):
        assert served.client.get(ACTIVITY, params=RANGE).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_faults_only_hit_the_listed_paths_and_dates(served: Served) -> None:
    served.faults.fail_next = 1
    served.faults.fail_paths = {"/key/list"}
    assert served.client.get(ACTIVITY, params=RANGE).status_code == 200
    assert served.client.get("/key/list").status_code == 500
    served.faults.fail_next, served.faults.fail_paths, served.faults.fail_dates = 1, None, {DAYS[1]}
    assert served.client.get(ACTIVITY, params=RANGE).status_code == 200
    assert served.client.get(ACTIVITY, params={"start_date": DAYS[1], "end_date": DAYS[2]}).status_code == 500
    assert served.faults.fail_next == 0


def test_mutate_day_grows_the_live_day_between_requests(served: Served) -> None:
    live, closed = DAYS[-1], DAYS[0]
    served.faults.mutate_day = live
    first = served.client.get(ACTIVITY, params=RANGE).json()
    second = served.client.get(ACTIVITY, params=RANGE).json()
    assert day_metrics(second, live)["api_requests"] > day_metrics(first, live)["api_requests"]
    assert day_metrics(second, live)["spend"] > day_metrics(first, live)["spend"]
    assert day_metrics(second, closed) == day_metrics(first, closed)

    untouched = served.faults.mutations
    served.client.get(ACTIVITY, params={"start_date": closed, "end_date": closed})
    assert served.faults.mutations == untouched


def test_mutate_day_inserts_rows_and_respects_the_limit(served: Served) -> None:
    live = DAYS[-1]
    served.faults.mutate_day, served.faults.mutate_limit = live, 5
    rows_before = len(served.store.rows_on(live))
    bodies = [served.client.get(AGGREGATED, params=RANGE).json() for _ in range(7)]
    assert served.faults.mutations == 5
    assert len(served.store.rows_on(live)) == rows_before + 1  # the fifth mutation inserts a row
    assert bodies[5] == bodies[6]
    assert bodies[0] != bodies[5]


# -- request log ----------------------------------------------------------------------------------


def test_request_log_records_every_request_in_order(served: Served) -> None:
    served.client.get(ACTIVITY, params={**RANGE, "page": "2", "page_size": "4"})
    served.client.get(ACTIVITY, params=RANGE, headers={"Authorization": ""})
    served.client.get("/key/list", params={"size": "5"})
    served.client.get("/no/such/route")
    log = served.store.request_log
    assert [(record.path, record.status) for record in log] == [
        (ACTIVITY, 200),
        (ACTIVITY, 401),
        ("/key/list", 200),
        ("/no/such/route", 404),
    ]
    assert log[0].params == {**RANGE, "page": "2", "page_size": "4"}
    assert [record.status for record in served.store.requests_for(ACTIVITY)] == [200, 401]
    served.store.clear_log()
    assert served.store.request_log == []


def test_unknown_routes_and_methods_answer_like_fastapi(served: Served) -> None:
    missing = served.client.get("/no/such/route")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong_method = served.client.post(ACTIVITY)
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})


# -- /aggregated ----------------------------------------------------------------------------------


def fetch_all_pages(client: httpx.Client, params: dict[str, str], page_size: int) -> list[dict[str, Any]]:
    pages = [client.get(ACTIVITY, params={**params, "page": "1", "page_size": str(page_size)}).json()]
    while pages[-1]["metadata"]["has_more"]:
        page = len(pages) + 1
        pages.append(
            client.get(ACTIVITY, params={**params, "page": str(page), "page_size": str(page_size)}).json()
        )
    assert len(pages) == max(1, pages[0]["metadata"]["total_pages"])
    return pages


FILTERS = st.sampled_from(
    [
        {},
        {"model": "gpt-4o"},
        {"model": "unknown-model"},
        {"api_key": "unattributed"},
        {"api_key": API_KEYS[0]},
    ]
)


@pytest.fixture(scope="module")
def served_module(server: Served) -> Served:
    """The module's server without per-example reset (hypothesis reuses one fixture value)."""
    server.faults.reset()
    return server


@settings(max_examples=30, deadline=None)
@given(rows=rows_strategy(max_size=24), page_size=st.integers(1, 7), filters=FILTERS)
def test_aggregated_equals_merged_pages(
    served_module: Served,
    rows: list[dict[str, Any]],
    page_size: int,
    filters: dict[str, str],
) -> None:
    store, client = served_module.store, served_module.client
    store.set_rows(rows)
    params = {**RANGE, **filters}
    aggregated = client.get(AGGREGATED, params={**params, "api_key_limit": "1000"}).json()
    merged = merge_pages(fetch_all_pages(client, params, page_size))

    assert [day["date"] for day in aggregated["results"]] == sorted(merged, reverse=True)
    for day in aggregated["results"]:
        expected = merged[day["date"]]
        assert day["breakdown"]["entities"] == {}
        expected["breakdown"]["entities"] = {}
        assert_close(day, expected, day["date"])

    # One page holding every row has the same numbers, but not the same dict order nor always the same
    # last float bits: /aggregated is PostgreSQL's GROUPING SETS result (nullable_columns.json records
    # LiteLLM's own two bodies differing so; its replay checks the order and the bits exactly).
    single = client.get(ACTIVITY, params={**params, "page_size": "1000"}).json()
    for day, whole in zip(aggregated["results"], single["results"], strict=True):
        assert_close(
            {**day, "breakdown": {**day["breakdown"], "entities": None}},
            {**whole, "breakdown": {**whole["breakdown"], "entities": None}},
            day["date"],
        )
    totals = {name: value for name, value in aggregated["metadata"].items() if name.startswith("total_")}
    del totals["total_pages"], totals["total_api_keys"]
    assert_close(totals, {name: single["metadata"][name] for name in totals})
    assert aggregated["metadata"]["total_api_keys"] == len(
        {row["api_key"] for row in store.view().select(DAYS[0], DAYS[-1], **filters)}
    )


def test_aggregated_keeps_only_the_top_keys_by_spend(served: Served) -> None:
    spends = {"k1" * 32: 4.0, "k2" * 32: 3.0, "k3" * 32: 3.0, "k4" * 32: 1.0, "": 0.5}
    served.store.set_rows(
        [
            make_row(day, "alice", key, model, "openai", spend=spend / 2, successful_requests=1)
            for day in DAYS[:2]
            for key, spend in spends.items()
            for model in ("gpt-4o", None)
        ]
    )
    body = served.client.get(AGGREGATED, params={**RANGE, "api_key_limit": "2"}).json()
    top = {"k1" * 32, "k2" * 32}  # k2 and k3 tie on spend: the smaller key wins
    expected_metadata = {
        "page": 1,
        "total_pages": 1,
        "has_more": False,
        "api_key_limit": 2,
        "total_api_keys": 5,
        "entity_total_api_keys": None,
    }
    assert {name: body["metadata"][name] for name in expected_metadata} == expected_metadata
    assert math.isclose(body["metadata"]["total_spend"], 2 * sum(spends.values()))
    for day in body["results"]:
        assert set(day["breakdown"]["api_keys"]) == top
        for group in ("models", "model_groups", "providers", "endpoints"):
            for entry in day["breakdown"][group].values():
                assert set(entry["api_key_breakdown"]) <= top
        assert math.isclose(day["breakdown"]["providers"]["openai"]["metrics"]["spend"], sum(spends.values()))
        assert set(day["breakdown"]["models"]) == {"gpt-4o", "unknown-model"}
    default = served.client.get(AGGREGATED, params=RANGE).json()
    assert default["metadata"]["api_key_limit"] == 100
    assert set(default["results"][0]["breakdown"]["api_keys"]) == {*top, "k3" * 32, "k4" * 32, "unattributed"}


def _limit_error(error_type: str, message: str) -> dict[str, Any]:
    return {"detail": [{"type": error_type, "loc": ["query", "api_key_limit"], "msg": message}]}


@pytest.mark.parametrize(
    ("params", "status", "body"),
    [
        (
            {**RANGE, "api_key_limit": "0"},
            422,
            _limit_error("greater_than_equal", "Input should be greater than or equal to 1"),
        ),
        (
            {**RANGE, "api_key_limit": "1001"},
            422,
            _limit_error("less_than_equal", "Input should be less than or equal to 1000"),
        ),
        ({"start_date": DAYS[0]}, 400, {"detail": {"error": "Please provide start_date and end_date"}}),
    ],
)
def test_aggregated_validates_its_parameters(
    served: Served, params: dict[str, str], status: int, body: dict[str, Any]
) -> None:
    response = served.client.get(AGGREGATED, params=params)
    assert (response.status_code, response.json()) == (status, body)


def test_empty_aggregated_range(served: Served) -> None:
    body = served.client.get(AGGREGATED, params={"start_date": "2020-01-01", "end_date": "2020-01-02"}).json()
    assert body["results"] == []
    assert body["metadata"]["total_api_keys"] == 0
    assert body["metadata"]["total_spend"] == 0.0


# -- virtual keys ---------------------------------------------------------------------------------


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_non_admin_keys_see_only_their_own_user(served: Served) -> None:
    own = served.client.get(ACTIVITY, params=RANGE, headers=_as(ALICE_KEY))
    assert own.status_code == 200
    assert {user for day in own.json()["results"] for user in day["breakdown"]["entities"]} == {"alice"}
    explicit = served.client.get(ACTIVITY, params={**RANGE, "user_id": "alice"}, headers=_as(ALICE_KEY))
    assert explicit.json() == own.json()
    other = served.client.get(ACTIVITY, params={**RANGE, "user_id": "bob"}, headers=_as(ALICE_KEY))
    assert (other.status_code, other.json()) == (
        403,
        {"detail": {"error": "Non-admin users can only view their own spend data."}},
    )
    service = served.client.get(ACTIVITY, params=RANGE, headers=_as(SVC_KEY))
    assert service.status_code == 403
    assert service.json()["detail"]["error"].startswith("Service-account keys cannot query user analytics.")


def test_admin_role_keys_and_bad_keys(served: Served) -> None:
    admin = served.client.get(ACTIVITY, params={**RANGE, "user_id": "bob"}, headers=_as(ROOT_KEY))
    assert admin.status_code == 200
    assert admin.json()["metadata"]["total_api_requests"] == 12  # bob: 3 days × (3 ok + 1 failed)
    unknown = served.client.get(ACTIVITY, params=RANGE, headers=_as("sk-nope"))
    assert (unknown.status_code, unknown.json()) == (
        401,
        {
            "error": {
                "message": "Authentication Error, Invalid API key provided.",
                "type": "token_not_found_in_db",
                "param": "key",
                "code": "401",
            }
        },
    )


def test_directory_routes_for_non_admins(served: Served) -> None:
    keys = served.client.get("/key/list", headers=_as(ALICE_KEY)).json()
    assert keys["keys"] == [KEYS[0]["token"]]
    assert served.client.get("/user/list", headers=_as(ALICE_KEY)).status_code == 401
    assert served.client.get("/user/list").json()["total"] == 2


def test_include_current_utc_day_widens_the_range_to_today(served: Served) -> None:
    utc_now = datetime.now(UTC)
    today = utc_now.date().isoformat()
    local_today = (utc_now - timedelta(minutes=1439)).date().isoformat()  # a caller ~a day behind UTC
    served.store.add_rows([make_row(today, "alice", "", "gpt-4o", "openai", successful_requests=1)])
    params = {"start_date": local_today, "end_date": local_today, "timezone": "1439"}
    alone = served.client.get(ACTIVITY, params=params).json()
    widened = served.client.get(ACTIVITY, params={**params, "include_current_utc_day": "true"}).json()
    assert today not in {day["date"] for day in alone["results"]}
    assert today in {day["date"] for day in widened["results"]}


# -- /aggregated totals that disagree with the pages ------------------------------------------------


def test_skew_aggregated_dates_makes_only_their_totals_disagree_with_the_true_pages() -> None:
    store = LiteLLMStore(keys=KEYS, users=USERS, rows=sample_rows())
    faults = Faults()
    empty_day = "2026-11-17"  # no rows on it
    wide = {"start_date": empty_day, "end_date": DAYS[-1]}
    one_day = {"start_date": DAYS[0], "end_date": DAYS[0]}
    with running_litellm(store, faults) as url, httpx.Client(base_url=url, headers=ADMIN) as client:
        honest = client.get(AGGREGATED, params=wide).json()
        honest_one_day = client.get(AGGREGATED, params=one_day).json()
        honest_pages = fetch_all_pages(client, wide, 4)

        faults.skew_aggregated_dates = {DAYS[1], empty_day}
        skewed = client.get(AGGREGATED, params=wide).json()
        assert fetch_all_pages(client, wide, 4) == honest_pages  # the pages stay true, bit for bit

        by_date = {day["date"]: day for day in skewed["results"]}
        assert list(by_date) == [DAYS[2], DAYS[1], DAYS[0], empty_day]
        for day in honest["results"]:
            if day["date"] != DAYS[1]:
                assert by_date[day["date"]] == day
        # The skewed day keeps its true breakdowns; its totals are off by SKEW.
        off = {field: amount for field, _, amount in SKEW}
        truth = next(day for day in honest["results"] if day["date"] == DAYS[1])
        assert by_date[DAYS[1]]["breakdown"] == truth["breakdown"]
        assert by_date[DAYS[1]]["metrics"] == {
            name: value + off.get(name, 0) for name, value in truth["metrics"].items()
        }
        # A day without rows appears, with SKEW for totals and nothing in its breakdowns.
        invented = by_date[empty_day]
        assert {name: value for name, value in invented["metrics"].items() if value} == off
        assert set(invented["metrics"]) == set(truth["metrics"])
        assert invented["breakdown"] == {name: {} for name in truth["breakdown"]}
        # The query's totals move with its days' (two skewed dates), the rest of its metadata stays.
        skewed_totals = {total for _, total, _ in SKEW}
        for _, total, amount in SKEW:
            assert math.isclose(skewed["metadata"][total], honest["metadata"][total] + 2 * amount)
        for name, value in honest["metadata"].items():
            if name not in skewed_totals:
                assert skewed["metadata"][name] == value

        # A range without a skewed date is untouched; reset ends the fault.
        assert client.get(AGGREGATED, params=one_day).json() == honest_one_day
        faults.reset()
        assert client.get(AGGREGATED, params=wide).json() == honest
