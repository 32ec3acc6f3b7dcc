"""GraphQL over HTTP: every client error is a JSON GraphQL error with a code and the specification's
status, and ``application/graphql-response+json`` is served to clients that ask for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api_client import Gateway, open_gateway
from tests.test_answer_cache import DASHBOARD, RANGE
from tests.test_cached_answers import warm
from usage_gateway.resolvers.viewer import Role

GRAPHQL_RESPONSE = "application/graphql-response+json; charset=utf-8"
VIEWER = {"query": "{ viewer { id } }"}


@pytest.fixture
async def gw(database_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(database_url) as gateway:
        yield gateway


def auth(gw: Gateway, accept: str | None = None, **more: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {gw.admin}", **more}
    if accept is not None:
        headers["Accept"] = accept
    return headers


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error of a refused request, checked to be a GraphQL error with ``code`` and no data."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    assert error["message"]
    return body


async def post_graphql(gw: Gateway, body: object, accept: str = GRAPHQL_RESPONSE) -> httpx.Response:
    return await gw.client.post("/graphql", json=body, headers=auth(gw, accept))


# --- Refused before GraphQL, with either media type ----------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_405_with_allow(gw: Gateway, method: str) -> None:
    response = await gw.client.request(
        method, "/graphql", params={"query": "{ viewer { id } }"}, headers=auth(gw)
    )
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/json"
    assert "POST" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_a_body_that_is_not_json_utf8_is_415(gw: Gateway, content_type: str | None) -> None:
    headers = auth(gw) if content_type is None else auth(gw, **{"Content-Type": content_type})
    response = await gw.client.post("/graphql", content=b'{"query": "{ viewer { id } }"}', headers=headers)
    refusal(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in response.json()["errors"][0]["message"]


async def test_json_with_a_charset_is_accepted(gw: Gateway) -> None:
    headers = auth(gw, **{"Content-Type": "application/json; charset=UTF-8"})
    response = await gw.client.post("/graphql", content=b'{"query": "{ viewer { id } }"}', headers=headers)
    assert response.json()["data"] == {"viewer": {"id": "admin"}}


@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
async def test_malformed_json_is_400(gw: Gateway, accept: str | None) -> None:
    for body in (b"{not json", b'{"query":', b"NONSENSE", b"\xff\xfe"):
        headers = auth(gw, accept, **{"Content-Type": "application/json"})
        response = await gw.client.post("/graphql", content=body, headers=headers)
        refusal(response, 400, "BAD_REQUEST")
        assert response.headers["content-type"] == (accept or "application/json")
        assert "not JSON" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(("accept", "status"), [("application/json", 400), (GRAPHQL_RESPONSE, 422)])
async def test_a_batch_or_a_malformed_request_is_400_or_422(gw: Gateway, accept: str, status: int) -> None:
    batch = [VIEWER, {"query": "{ viewer { roles } }"}]
    body = refusal(await post_graphql(gw, batch, accept), status, "BAD_REQUEST")
    assert "one operation per request" in body["errors"][0]["message"]
    for malformed, field in (
        ({"qeury": "{ viewer { id } }"}, "`query`"),
        ({"query": 7}, "`query`"),
        ({"query": "{ viewer { id } }", "variables": [7]}, "`variables`"),
        ({"query": "{ viewer { id } }", "operationName": 1}, "`operationName`"),
        ({"query": "{ viewer { id } }", "extensions": "x"}, "`extensions`"),
        ("{ viewer { id } }", "JSON object"),
    ):
        body = refusal(await post_graphql(gw, malformed, accept), status, "BAD_REQUEST")
        assert field in body["errors"][0]["message"]


async def test_an_accept_without_json_is_406(gw: Gateway) -> None:
    for accept in ("text/html", "application/xml, text/*;q=0.5", "application/json;q=0"):
        response = await post_graphql(gw, VIEWER, accept)
        refusal(response, 406, "NOT_ACCEPTABLE")
        assert response.headers["content-type"] == "application/json"


async def test_refusals_come_before_authentication(gw: Gateway) -> None:
    response = await gw.client.get("/graphql", params={"query": "{ viewer { id } }"})
    refusal(response, 405, "METHOD_NOT_ALLOWED")
    response = await gw.client.post("/graphql", content=b"{}", headers={"Content-Type": "text/plain"})
    refusal(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    response = await gw.client.post("/graphql", json=VIEWER, headers={"Accept": GRAPHQL_RESPONSE})
    refusal(response, 401, "UNAUTHENTICATED")
    assert response.headers["content-type"] == GRAPHQL_RESPONSE


# --- Media type negotiation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/*", "application/json"),
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json;q=0.5, application/json", "application/json"),
        ("text/html, */*;q=0.1", "application/json"),
    ],
)
async def test_the_response_media_type_follows_accept(
    gw: Gateway, accept: str | None, content_type: str
) -> None:
    response = await gw.client.post("/graphql", json=VIEWER, headers=auth(gw, accept))
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.json()["data"] == {"viewer": {"id": "admin"}}


async def test_a_cache_hit_is_served_in_the_negotiated_media_type(database_url: str, redis_url: str) -> None:
    async with warm(database_url, redis_url) as (gw, _):
        body = {"query": DASHBOARD, "variables": RANGE}
        response = await post_graphql(gw, body)
        assert response.headers["x-answer-cache"] == "hit"
        assert response.status_code == 200
        assert response.headers["content-type"] == GRAPHQL_RESPONSE
        assert "errors" not in response.json()


# --- GraphQL's answers: 200 for every GraphQL error with application/json, the spec's codes with ----
# --- application/graphql-response+json ------------------------------------------------------------


CASES = [
    # (request, status with application/graphql-response+json, code, data kept)
    ({"query": "{ viewer { id }"}, 400, "BAD_USER_INPUT", False),  # the document does not parse
    ({"query": "{ viewer { nope } }"}, 422, "BAD_USER_INPUT", False),  # nor validate
    ({"query": "{ __schema { types { name } } }"}, 422, "BAD_USER_INPUT", False),  # introspection is off
    (  # a variable that does not coerce
        {
            "query": "query ($d: Date!) { filterOptions(from: $d, to: $d) { models } }",
            "variables": {"d": "x"},
        },
        422,
        "BAD_USER_INPUT",
        False,
    ),
    (  # a field error: the operation ran
        {"query": '{ usage(filter: {from: "2024-01-22", to: "2024-01-01"}) { from } }'},
        294,
        "BAD_USER_INPUT",
        True,
    ),
]


@pytest.mark.parametrize(("request_body", "status", "code", "data"), CASES)
async def test_graphql_errors_by_media_type(
    gw: Gateway, request_body: dict[str, Any], status: int, code: str, data: bool
) -> None:
    legacy = await post_graphql(gw, request_body, "application/json")
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None
    assert legacy.json()["errors"][0]["extensions"]["code"] == code
    response = await post_graphql(gw, request_body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    body = response.json()
    assert ("data" in body) is data
    assert body["errors"][0]["extensions"]["code"] == code
    assert body["errors"] == legacy.json()["errors"]


async def test_partial_data_with_errors_is_294(gw: Gateway) -> None:
    # No day is stored and there is no LiteLLM: the totals come with the missing days as an error.
    query = '{ usage(filter: {from: "2024-01-01", to: "2024-01-02"}) { totals { requests } } }'
    legacy = await post_graphql(gw, {"query": query}, "application/json")
    assert legacy.status_code == 200
    response = await post_graphql(gw, {"query": query})
    assert response.status_code == 294
    body = response.json()
    assert body == legacy.json()
    assert body["data"] == {"usage": {"totals": {"requests": 0}}}
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"


async def test_an_operation_that_cannot_be_chosen(gw: Gateway) -> None:
    body = {"query": "query A { viewer { id } } query B { viewer { id } }", "operationName": "C"}
    refusal(await post_graphql(gw, body, "application/json"), 400, "BAD_USER_INPUT")
    refusal(await post_graphql(gw, body), 422, "BAD_USER_INPUT")
    refusal(await post_graphql(gw, {"query": ""}), 400, "BAD_USER_INPUT")


async def test_a_forbidden_operation_is_403(gw: Gateway) -> None:
    token = gw.token("alice", Role.USER)
    request = {"query": "mutation { syncDirectory { usersCreated } }"}
    legacy = await gw.client.post("/graphql", json=request, headers={"Authorization": f"Bearer {token}"})
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    headers = {"Authorization": f"Bearer {token}", "Accept": GRAPHQL_RESPONSE}
    response = await gw.client.post("/graphql", json=request, headers=headers)
    refusal(response, 403, "FORBIDDEN")


async def test_a_body_over_the_limit_is_413_in_the_negotiated_media_type(gw: Gateway) -> None:
    big = {"query": "{ viewer { id } }", "variables": {"pad": "x" * 70_000}}
    response = await post_graphql(gw, big)
    refusal(response, 413, "QUERY_TOO_COMPLEX")
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
