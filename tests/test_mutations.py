"""The mutations through the ASGI app, with LiteLLM played by the project's compatible server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from tests.api_client import Gateway, open_gateway
from tests.expected import assert_same_cells, expected_cells, total_of
from tests.gateway_harness import clock_at, long_after, stored_cells
from tests.test_day_cache import GOLDEN, day_fetches, spread_rows
from usage_gateway.datasources.daycache.days import Clock
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.records import ExportDimension, ExportFormat, get_export
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.resolvers.viewer import Role

REFRESH_TODAY = "mutation { refreshToday { days refreshedAt changed } }"
REFRESH_RANGE = "mutation($from: Date!, $to: Date!) { refreshRange(from: $from, to: $to) { days changed } }"
SYNC = (
    "mutation { syncDirectory { usersCreated usersUpdated apiKeysCreated apiKeysUpdated apiKeysRevoked"
    " budgetsChanged } }"
)
EXPORT = """
mutation($from: Date!, $to: Date!, $format: ExportFormat!) {
  exportUsage(filter: {from: $from, to: $to}, format: $format) {
    id status format rowCount byteSize sha256 downloadUrl expiresAt error
  }
}"""
TOTALS = (
    "query($from: Date!, $to: Date!) { usage(filter: {from: $from, to: $to}) { totals { spend requests } } }"
)


def gateway_with_litellm(
    database_url: str, redis_url: str, litellm_url: str, *, clock: Clock, export_dir: Path
) -> AbstractAsyncContextManager[Gateway]:
    return open_gateway(database_url, redis_url, litellm_url=litellm_url, clock=clock, export_dir=export_dir)


async def audit_rows(db: Database, action: str) -> list[tuple[Any, ...]]:
    return await db.fetch_all(
        "SELECT actor, arguments, outcome, detail FROM audit_log WHERE action = %s ORDER BY id", (action,)
    )


async def test_twenty_concurrent_refresh_today_calls_fetch_each_open_day_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    today = date(2026, 11, 23)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([today]))
    clock = clock_at(datetime.combine(today, time(15), UTC))
    with running_litellm(store) as url:
        # All twenty admitted at once: admission control's default would run them in two waves.
        async with open_gateway(
            database_url,
            redis_url,
            litellm_url=url,
            clock=clock,
            export_dir=tmp_path,
            max_concurrent_operations=20,
        ) as gw:
            bodies = await asyncio.gather(*(gw.data(REFRESH_TODAY) for _ in range(20)))
            assert day_fetches(store, today) == 1
            assert {tuple(b["refreshToday"]["days"]) for b in bodies} == {(today.isoformat(),)}
            assert all(b["refreshToday"]["changed"] for b in bodies)

            store.add_rows(spread_rows([today], per_day=1))
            again = await gw.data(REFRESH_TODAY)
            assert again["refreshToday"]["changed"] is True
            assert day_fetches(store, today) == 2
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))

            unchanged = await gw.data(REFRESH_TODAY)
            assert unchanged["refreshToday"]["changed"] is False
            audits = await audit_rows(gw.db, "refreshToday")
            assert len(audits) == 22
            assert {row[0] for row in audits} == {"admin"}
            assert {row[2] for row in audits} == {"ok"}


async def test_refresh_range_replaces_closed_days_exactly_and_is_audited(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    days = [date(2026, 11, 1), date(2026, 11, 2)]
    rows = spread_rows(days)
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    variables = {"from": "2026-11-01", "to": "2026-11-02"}
    with running_litellm(store) as url:
        async with gateway_with_litellm(
            database_url, redis_url, url, clock=clock_at(long_after(days[-1])), export_dir=tmp_path
        ) as gw:
            before = await gw.data(TOTALS, variables)
            assert before["usage"]["totals"]["requests"] == total_of(rows).api_requests
            corrected = [{**row, "api_requests": row["api_requests"] + 1} for row in rows]
            store.set_rows(corrected)
            # Closed days are never fetched again on their own...
            assert (await gw.data(TOTALS, variables)) == before
            result = await gw.data(REFRESH_RANGE, variables)
            assert result["refreshRange"] == {"days": ["2026-11-01", "2026-11-02"], "changed": True}
            after = await gw.data(TOTALS, variables)
            # ...and an admin's refresh replaces them: the new numbers, not old + new.
            assert after["usage"]["totals"]["requests"] == total_of(corrected).api_requests
            assert_same_cells(await stored_cells(gw.db), expected_cells(corrected))
            audits = await audit_rows(gw.db, "refreshRange")
            assert len(audits) == 1
            assert audits[0][1]["from"] == "2026-11-01"
            assert audits[0][2] == "ok"


async def test_refresh_range_is_bounded_and_checked(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    store = LiteLLMStore(keys=[], users=[], rows=[])
    with running_litellm(store) as url:
        async with gateway_with_litellm(
            database_url, redis_url, url, clock=clock_at(long_after(date(2026, 11, 2))), export_dir=tmp_path
        ) as gw:
            too_long = await gw.query(REFRESH_RANGE, {"from": "2025-01-01", "to": "2026-11-01"})
            assert too_long["errors"][0]["extensions"]["code"] == "RANGE_TOO_LARGE"
            reversed_range = await gw.query(REFRESH_RANGE, {"from": "2026-11-02", "to": "2026-11-01"})
            assert reversed_range["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            readonly = gw.token("ro", Role.ADMIN_READONLY)
            forbidden = await gw.query(REFRESH_TODAY, token=readonly)
            assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert store.requests_for("/user/daily/activity") == []


async def test_sync_directory_on_the_golden_directory_then_nothing_changes(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    golden = json.loads((GOLDEN / "directory.json").read_text())
    store = LiteLLMStore.from_golden(GOLDEN / "directory.json")
    with running_litellm(store) as url:
        async with gateway_with_litellm(
            database_url, redis_url, url, clock=clock_at(long_after(date(2026, 11, 2))), export_dir=tmp_path
        ) as gw:
            first = (await gw.data(SYNC))["syncDirectory"]
            assert first["usersCreated"] == len(golden["users"])
            assert first["apiKeysCreated"] == len(golden["keys"])
            assert first["budgetsChanged"] == 2  # ned's and quinn's max_budget
            second = (await gw.data(SYNC))["syncDirectory"]
            assert second == dict.fromkeys(second, 0)
            stored = await gw.db.fetch_all("SELECT token_hash FROM api_keys")
            assert {row[0] for row in stored} == {key["token"] for key in golden["keys"]}
            assert len(await audit_rows(gw.db, "syncDirectory")) == 2


async def test_export_usage_writes_a_downloadable_file_that_sums_to_the_totals(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    days = [date(2026, 11, 5), date(2026, 11, 6)]
    rows = spread_rows(days, per_day=4)
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    variables = {"from": "2026-11-05", "to": "2026-11-06", "format": "CSV"}
    with running_litellm(store) as url:
        async with gateway_with_litellm(
            database_url, redis_url, url, clock=clock_at(long_after(days[-1])), export_dir=tmp_path
        ) as gw:
            export = (await gw.data(EXPORT, variables))["exportUsage"]
            assert export["status"] == "DONE"
            assert export["format"] == "CSV"
            # An absolute link on the request's own base URL (no PUBLIC_URL here), signed, with no JWT in it.
            link = export["downloadUrl"]
            assert link.startswith(f"http://gateway/exports/{export['id']}?token=")
            assert gw.admin not in link
            response = await gw.client.get(link)
            assert response.status_code == 200
            with_header = await gw.client.get(link, headers={"Authorization": f"Bearer {gw.admin}"})
            assert with_header.content == response.content
            assert response.headers["content-type"].startswith("text/csv")
            assert "usage_2026-11-05_2026-11-06" in response.headers["content-disposition"]
            assert len(response.content) == export["byteSize"]
            table = list(csv.DictReader(io.StringIO(response.text)))
            assert len(table) == export["rowCount"]
            assert sum(int(r["requests"]) for r in table) == total_of(rows).api_requests
            found = await gw.data(
                "query($id: ID!) { export(id: $id) { id status sha256 } }", {"id": export["id"]}
            )
            assert found["export"] == {"id": export["id"], "status": "DONE", "sha256": export["sha256"]}
            stranger = gw.token("someone-else", Role.USER)
            hidden = await gw.data(
                "query($id: ID!) { export(id: $id) { id } }", {"id": export["id"]}, token=stranger
            )
            assert hidden["export"] is None
            unknown = await gw.client.get(
                "/exports/no-such-id", headers={"Authorization": f"Bearer {gw.admin}"}
            )
            assert unknown.status_code == 404
            nul = await gw.client.get("/exports/a%00b", headers={"Authorization": f"Bearer {gw.admin}"})
            assert nul.status_code == 404


async def test_export_usage_takes_the_format_and_dimensions_as_the_data_layer_names_them(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    days = [date(2026, 11, 5)]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days, per_day=2))
    query = """
    mutation($from: Date!, $to: Date!) {
      exportUsage(filter: {from: $from, to: $to}, format: NDJSON, groupBy: [MODEL, DATE, MODEL]) {
        id status format
      }
    }"""
    with running_litellm(store) as url:
        async with gateway_with_litellm(
            database_url, redis_url, url, clock=clock_at(long_after(days[-1])), export_dir=tmp_path
        ) as gw:
            export = (await gw.data(query, {"from": "2026-11-05", "to": "2026-11-05"}))["exportUsage"]
            assert (export["status"], export["format"]) == ("DONE", "NDJSON")
            record = await get_export(gw.db, export["id"])
            assert record is not None
            assert record.format is ExportFormat.NDJSON
            assert record.group_by == (ExportDimension.MODEL, ExportDimension.DATE)
            first = json.loads((tmp_path / f"{record.id}.ndjson").read_text().splitlines()[0])
            assert list(first)[:2] == ["model", "date"]


async def test_download_links_start_with_public_url_whatever_the_host_header(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    days = [date(2026, 11, 5)]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days, per_day=2))
    variables = {"from": "2026-11-05", "to": "2026-11-05", "format": "CSV"}
    public = "https://usage.example.com/analytics"
    with running_litellm(store) as url:
        async with open_gateway(
            database_url,
            redis_url,
            litellm_url=url,
            clock=clock_at(long_after(days[-1])),
            export_dir=tmp_path,
            public_url=public + "/",
        ) as gw:
            alice = gw.token("alice", Role.USER)
            response = await gw.client.post(
                "/graphql",
                json={"query": EXPORT, "variables": variables},
                headers={"Authorization": f"Bearer {alice}", "Host": "evil.example"},
            )
            export = response.json()["data"]["exportUsage"]
            link = export["downloadUrl"]
            assert link.startswith(f"{public}/exports/{export['id']}?token=")
            assert alice not in link
            # Behind the proxy that PUBLIC_URL names, the gateway sees the path without its prefix.
            path = link.removeprefix(public)
            downloaded = await gw.client.get(path)
            assert downloaded.status_code == 200, downloaded.text
            assert len(downloaded.content) == export["byteSize"]

            # Query.export gives each viewer a link of their own: an admin's opens alice's export too.
            found = "query($id: ID!) { export(id: $id) { downloadUrl } }"
            again = (await gw.data(found, {"id": export["id"]}, token=alice))["export"]["downloadUrl"]
            mine = (await gw.data(found, {"id": export["id"]}))["export"]["downloadUrl"]
            assert again.startswith(public)
            assert mine.startswith(public)
            assert gw.admin not in mine
            assert (await gw.client.get(mine.removeprefix(public))).status_code == 200
            # A link's token does not open another export, not even one of the same requester.
            other = (await gw.data(EXPORT, variables, token=alice))["exportUsage"]
            token = again.split("?", 1)[1]
            crossed = await gw.client.get(f"/exports/{other['id']}?{token}")
            assert crossed.status_code == 401
            assert crossed.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
