"""CORS (``CORS_ORIGINS``): off by default, an explicit allow-list of origins, never ``*``."""

from __future__ import annotations

import pytest

from tests.api_client import open_gateway
from tests.test_cli import run_cli
from usage_gateway.server.config import ConfigError, load_settings

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_is_off_by_default(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        assert gw.settings.cors_origins == ()
        response = await gw.client.options("/graphql", headers=preflight(APP))
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers
        headers = {"Authorization": f"Bearer {gw.admin}", "Origin": APP}
        response = await gw.client.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


async def test_a_listed_origin_passes_the_preflight_and_reads_the_answer(database_url: str) -> None:
    async with open_gateway(database_url, cors_origins=f"{APP}, http://localhost:5173/") as gw:
        for origin in (APP, "http://localhost:5173"):
            response = await gw.client.options("/graphql", headers=preflight(origin))
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == origin
            assert response.headers["access-control-allow-credentials"] == "true"
            assert {"POST", "GET"} <= set(response.headers["access-control-allow-methods"].split(", "))
            allowed = response.headers["access-control-allow-headers"].lower().split(", ")
            assert {"authorization", "content-type"} <= set(allowed)
        headers = {"Authorization": f"Bearer {gw.admin}", "Origin": APP}
        response = await gw.client.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
        assert response.json()["data"] == {"viewer": {"id": "admin"}}
        assert response.headers["access-control-allow-origin"] == APP
        exposed = response.headers["access-control-expose-headers"].lower().split(", ")
        assert {"x-request-id", "x-answer-cache", "retry-after"} <= set(exposed)


async def test_an_unlisted_origin_is_refused(database_url: str) -> None:
    async with open_gateway(database_url, cors_origins=APP) as gw:
        response = await gw.client.options("/graphql", headers=preflight(OTHER))
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        # A header the list does not allow fails the preflight too.
        response = await gw.client.options(
            "/graphql", headers={**preflight(APP), "Access-Control-Request-Headers": "x-secret"}
        )
        assert response.status_code == 400
        headers = {"Authorization": f"Bearer {gw.admin}", "Origin": OTHER}
        response = await gw.client.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
        assert "access-control-allow-origin" not in response.headers  # the browser keeps the answer hidden


@pytest.mark.parametrize("value", ["*", f"{APP},*"])
def test_a_wildcard_is_refused_with_the_reason(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGE_GATEWAY_CORS_ORIGINS", value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith("USAGE_GATEWAY_CORS_ORIGINS:")
    assert "'*' is refused" in str(refused.value)
    assert "every web site" in str(refused.value)


@pytest.mark.parametrize("value", [f"{APP}/graphql", "app.example.com", "ftp://app.example.com"])
def test_anything_but_an_origin_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGE_GATEWAY_CORS_ORIGINS", value)
    with pytest.raises(ConfigError, match=r"USAGE_GATEWAY_CORS_ORIGINS: .*is not an origin"):
        load_settings()


def test_origins_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGE_GATEWAY_CORS_ORIGINS", " https://A.example.com/ ,http://[::1]:8080,, ")
    assert load_settings().cors_origins == ("https://a.example.com", "http://[::1]:8080")
    monkeypatch.setenv("USAGE_GATEWAY_CORS_ORIGINS", "")
    assert load_settings().cors_origins == ()


def test_a_wildcard_stops_the_start(database_url: str) -> None:
    result = run_cli("migrate", env={"USAGE_GATEWAY_CORS_ORIGINS": "*"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].count("USAGE_GATEWAY_CORS_ORIGINS") == 1
