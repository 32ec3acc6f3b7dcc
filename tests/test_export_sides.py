"""Exports by MODEL_GROUP, ENDPOINT and MCP_SERVER, end to end: LiteLLM rows → the LiteLLM-compatible server
→ ``exportUsage`` (and ``usage-gateway export``). Each roll-up bucket's rows add up to its ``byModelGroup`` /
``byEndpoint`` / ``byMcpServer`` node and every row to the source rows' sums, exactly, in every format, under
the filters and crossings those fields allow; what they refuse is refused before an export row or a file
exists, with the fields' own message."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.api_client import DirectoryKey, DirectoryUser, Gateway, seed_directory
from tests.gateway_harness import clock_at, long_after
from tests.litellm_rows import METRIC_COLUMNS, Row, make_row
from tests.test_cli import run_cli
from tests.test_exports import read_back, xlsx_number_texts
from tests.test_side_breakdowns import (
    DAYS,
    FIELDS,
    FIRST_DAY,
    HEX_KEYS,
    TEAMS,
    Scenario,
    bucket,
    key_of,
    model_of,
    scenarios,
)
from tests.usage_from_rows import fresh_database, litellm_gateway
from usage_gateway.datasources.exports.query import SIDE_ROLLUPS, ExportDimension, export_columns
from usage_gateway.datasources.exports.records import ExportFormat
from usage_gateway.datasources.facts.side_breakdowns import SideRollup
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.cli import main

DIMENSION_OF = {rollup: dimension for dimension, rollup in SIDE_ROLLUPS.items()}
# The export column of each dimension's value (the first of its columns).
VALUE_COLUMN = {d: export_columns((d,))[0].name for d in ExportDimension}
# Export metric column → the node's metric, and → LiteLLM's row column (None: prompt + completion).
NODE_METRIC = {
    "spend": "spendExact",
    "requests": "requests",
    "successful_requests": "successfulRequests",
    "failed_requests": "failedRequests",
    "prompt_tokens": "promptTokens",
    "completion_tokens": "completionTokens",
    "cache_read_input_tokens": "cacheReadInputTokens",
    "cache_creation_input_tokens": "cacheCreationInputTokens",
    "total_tokens": "totalTokens",
}
ROW_METRIC: dict[str, str | None] = {
    "spend": "spend",
    "requests": "api_requests",
    "successful_requests": "successful_requests",
    "failed_requests": "failed_requests",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "cache_creation_input_tokens": "cache_creation_input_tokens",
    "total_tokens": None,
    "total_response_time_ms": "total_response_time_ms",
    "timed_requests": "timed_requests",
}
NODES = """
query ($filter: UsageFilter!) {
  usage(filter: $filter) { %s(first: 500) { nodes { %s metrics { %s } } } }
}
"""
EXPORT = """
mutation ($filter: UsageFilter!, $format: ExportFormat!, $groupBy: [ExportDimension!]!) {
  exportUsage(filter: $filter, format: $format, groupBy: $groupBy) { id status rowCount downloadUrl }
}
"""
EXTRA = (
    ExportDimension.DATE,
    ExportDimension.API_KEY,
    ExportDimension.MODEL,
    ExportDimension.USER,
    ExportDimension.TEAM,
)
WHOLE = {"from": DAYS[0], "to": DAYS[-1]}

Sums = dict[str, Any]


def has_usage(row: Row) -> bool:
    """Whether a row counts anywhere: the gateway keeps no part whose every number is zero."""
    return any(row[column] for column in METRIC_COLUMNS)


def row_value(case: Scenario, rollup: SideRollup, dimension: ExportDimension, row: Row) -> Any:
    """The value of ``dimension`` in the export row holding ``row``."""
    if dimension in SIDE_ROLLUPS:
        return bucket(rollup, row)
    if dimension is ExportDimension.DATE:
        return date.fromisoformat(row["date"])
    if dimension is ExportDimension.API_KEY:
        return key_of(row)
    if dimension is ExportDimension.MODEL:
        return model_of(row)
    if dimension is ExportDimension.USER:
        return case.user_of(row)
    assert dimension is ExportDimension.TEAM
    return case.team_of(row)


def source_sums(
    case: Scenario, rows: Sequence[Row], rollup: SideRollup, group_by: Sequence[ExportDimension]
) -> dict[tuple[Any, ...], Sums]:
    """Per group of the export: the sums of the source rows in the roll-up, groups with usage only."""
    sums: dict[tuple[Any, ...], Sums] = {}
    for row in rows:
        if bucket(rollup, row) is None or not has_usage(row):
            continue
        key = tuple(row_value(case, rollup, d, row) for d in group_by)
        entry = sums.setdefault(key, {"spend": Decimal(0), **dict.fromkeys(list(ROW_METRIC)[1:], 0)})
        for column, source in ROW_METRIC.items():
            if column == "spend":
                entry[column] += Decimal(repr(row["spend"]))
            elif source is None:
                entry[column] += row["prompt_tokens"] + row["completion_tokens"]
            else:
                entry[column] += row[source]
    return sums


def export_sums(
    rows: list[dict[str, Any]], group_by: Sequence[ExportDimension]
) -> dict[tuple[Any, ...], Sums]:
    """The export's rows by their group (each group once), metrics only."""
    found: dict[tuple[Any, ...], Sums] = {}
    for row in rows:
        key = tuple(row[VALUE_COLUMN[d]] for d in group_by)
        assert key not in found, ("a group in two rows", key)
        found[key] = {column: row[column] for column in ROW_METRIC}
    return found


def node_sums(nodes: list[dict[str, Any]], name_field: str) -> dict[str, Sums]:
    return {
        node[name_field]: {
            column: Decimal(node["metrics"][field]) if column == "spend" else int(node["metrics"][field])
            for column, field in NODE_METRIC.items()
        }
        for node in nodes
    }


def by_bucket(groups: dict[tuple[Any, ...], Sums], position: int) -> dict[str, Sums]:
    """Groups added up per roll-up bucket (the group key's ``position``), the node's metrics only."""
    totals: dict[str, Sums] = {}
    for key, sums in groups.items():
        entry = totals.setdefault(
            key[position], {"spend": Decimal(0), **dict.fromkeys(list(NODE_METRIC)[1:], 0)}
        )
        for column in NODE_METRIC:
            entry[column] += sums[column]
    return totals


@dataclass(frozen=True)
class Asked:
    """A filter of the export and the field, with the source rows it keeps."""

    name: str
    variables: dict[str, Any]
    keeps: Callable[[Row], bool]
    viewer: str | None = None  # a plain user's own scope: their id


def users_by_key_day(case: Scenario) -> dict[tuple[str, str], set[str]]:
    users: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in case.rows:
        if has_usage(row):
            users[row["date"], key_of(row)].add(case.user_of(row))
    return users


def is_shared(case: Scenario, rollup: SideRollup, rows: Sequence[Row]) -> bool:
    """Whether a row of the roll-up among ``rows`` has a key bucket several users used on its day."""
    users = users_by_key_day(case)
    return any(
        len(users[row["date"], key_of(row)]) > 1
        for row in rows
        if has_usage(row) and bucket(rollup, row) is not None
    )


@st.composite
def askings(draw: st.DrawFn, case: Scenario) -> Asked:
    kind = draw(st.sampled_from(("none", "key", "model", "user", "team", "self")))
    if kind == "key":
        key = draw(st.sampled_from(sorted({key_of(row) for row in case.rows})))
        key_id = f"key-{key[0]}" if key in case.owners else key
        return Asked(kind, {"apiKeyIds": [key_id]}, lambda row: key_of(row) == key)
    if kind == "model":
        used = sorted({model_of(row) for row in case.rows if has_usage(row)})
        if used:  # a model never seen is refused as unknown, whatever the grouping
            model = draw(st.sampled_from(used))
            return Asked(kind, {"models": [model]}, lambda row: model_of(row) == model)
    if kind == "user":
        user = draw(st.sampled_from(sorted({case.user_of(row) for row in case.rows})))
        users = users_by_key_day(case)
        return Asked(kind, {"userIds": [user]}, lambda row: user in users[row["date"], key_of(row)])
    if kind == "team":
        team = draw(st.sampled_from(("no-team", *TEAMS)))
        return Asked(kind, {"teamIds": [team]}, lambda row: case.team_of(row) == team)
    if kind == "self":
        return Asked(kind, {}, lambda row: case.user_of(row) == "alice", viewer="alice")
    return Asked("none", {}, lambda row: True)


@pytest.fixture(scope="module")
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore(keys=[], users=[], rows=[])
    with running_litellm(store) as url:
        yield store, url


async def flush(redis_url: str) -> None:
    """Day markers of an earlier example would lie about a fresh database."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()


async def seed(gw: Gateway, case: Scenario) -> None:
    """The scenario's directory and teams, as tests/test_side_breakdowns.py seeds them."""
    await seed_directory(
        gw.db,
        [DirectoryUser("alice", "Alice"), DirectoryUser("ben", "Ben")],
        [DirectoryKey(f"key-{key[0]}", key, owner) for key, owner in case.owners.items()],
    )
    await gw.db.execute("INSERT INTO teams (id, alias) VALUES ('team-a', 'A'), ('team-b', 'B')")
    for key, (first, then) in case.teams.items():
        await gw.db.execute("UPDATE api_key_teams SET team_id = %s WHERE token_hash = %s", (first, key))
        await gw.db.execute(
            "INSERT INTO api_key_teams (token_hash, valid_from, team_id) VALUES (%s, %s, %s)",
            (key, DAYS[1], then),
        )


async def downloaded(gw: Gateway, export: dict[str, Any], fmt: ExportFormat, folder: Path) -> Path:
    response = await gw.client.get(httpx.URL(export["downloadUrl"]).raw_path.decode())
    assert response.status_code == 200, response.text
    path = folder / f"download-{uuid.uuid4().hex}.{fmt.extension}"
    path.write_bytes(response.content)
    return path


def read_rows(path: Path, fmt: ExportFormat, group_by: Sequence[ExportDimension]) -> list[dict[str, Any]]:
    """The file's rows as dicts by column, spend a Decimal read from the format's own exact text."""
    columns = export_columns(group_by)
    header, rows = read_back(path, fmt, columns)
    assert header == [column.name for column in columns], fmt
    return [dict(zip(header, row, strict=True)) for row in rows]


async def exports_made(gw: Gateway) -> int:
    row = await gw.db.fetch_one("SELECT count(*) FROM exports")
    assert row is not None
    return int(row[0])


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


examples = settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # a shrink costs a gateway per step
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@examples
@given(case=scenarios(), data=st.data())
async def test_side_exports_equal_the_nodes_and_the_rows_or_are_refused_as_the_fields_are(
    case: Scenario,
    data: st.DataObject,
    litellm: tuple[LiteLLMStore, str],
    postgres_server: LocalPostgres,
    redis_url: str,
    tmp_path: Path,
) -> None:
    note(repr(case))
    rollup = data.draw(st.sampled_from(list(SideRollup)), label="rollup")
    extra = data.draw(st.lists(st.sampled_from(EXTRA), unique=True, max_size=2), label="extra")
    at = data.draw(st.integers(0, len(extra)), label="position")
    group_by = (*extra[:at], DIMENSION_OF[rollup], *extra[at:])
    fmt = data.draw(st.sampled_from(list(ExportFormat)), label="format")
    asked = data.draw(askings(case), label="filter")
    store, litellm_url = litellm
    store.set_rows(case.rows)
    await flush(redis_url)
    export_dir = tmp_path / uuid.uuid4().hex
    clock = clock_at(long_after(FIRST_DAY + timedelta(days=len(DAYS))))
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock, export_dir=export_dir) as gw,
    ):
        await seed(gw, case)
        token = None if asked.viewer is None else gw.token(asked.viewer, Role.USER)
        variables = {"filter": {**WHOLE, **asked.variables}}
        field, name_field = FIELDS[rollup]
        nodes = await gw.query(
            NODES % (field, name_field, " ".join(NODE_METRIC.values())), variables, token=token
        )
        export = await gw.query(
            EXPORT, {**variables, "format": fmt.value, "groupBy": [d.value for d in group_by]}, token=token
        )
        kept = [row for row in case.rows if asked.keeps(row)]
        by_user = asked.name in ("user", "self")
        if (by_user or ExportDimension.USER in group_by) and is_shared(case, rollup, kept):
            # Refused before anything is written, as the field is under the same filter.
            assert export["data"] is None, export
            (error,) = export["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert "several users" in error["message"]
            if by_user:
                assert nodes["data"] is None
                assert error["message"] == nodes["errors"][0]["message"]
            else:
                assert "grouped by USER" in error["message"]
            assert await exports_made(gw) == 0
            assert files_in(export_dir) == []
            return
        assert "errors" not in nodes, nodes["errors"]
        assert "errors" not in export, export["errors"]
        done = export["data"]["exportUsage"]
        assert done["status"] == "DONE"
        rows = read_rows(await downloaded(gw, done, fmt, tmp_path), fmt, group_by)
        assert int(done["rowCount"]) == len(rows)
        got = export_sums(rows, group_by)
        want = source_sums(case, kept, rollup, group_by)
        assert got == want, (group_by, fmt)
        position = group_by.index(DIMENSION_OF[rollup])
        assert by_bucket(got, position) == node_sums(nodes["data"]["usage"][field]["nodes"], name_field)
        if ExportDimension.TEAM in group_by:  # names come with the ids, as in every export
            aliases = {row["team_id"]: row["team_alias"] for row in rows}
            assert aliases == {team: {"team-a": "A", "team-b": "B"}.get(team) for team in aliases}


# --- Refusals before anything is written ----------------------------------------------------------------

SHARED_KEY = HEX_KEYS[0]  # outside the directory, used by two LiteLLM users on one day
REFUSALS_ROWS = [
    make_row(DAYS[0], "amy", SHARED_KEY, "gpt-4o", "openai", spend=0.5, successful_requests=2),
    make_row(DAYS[0], "bo", SHARED_KEY, "gpt-4o", "openai", spend=0.25, successful_requests=1),
    make_row(DAYS[1], "amy", HEX_KEYS[1], "claude-3-5-haiku-20241022", "anthropic", spend=1.0),
]
# (filter, groupBy, viewer (None: an admin), the field whose refusal under that filter and viewer the export
# must repeat word for word, or a fragment of the message)
REFUSED: list[tuple[dict[str, Any], list[str], str | None, str]] = [
    ({"providers": ["openai"]}, ["MODEL_GROUP"], None, "byModelGroup"),
    ({"tag": "User-Agent:claude-code"}, ["ENDPOINT", "DATE"], None, "byEndpoint"),
    ({"userIds": ["litellm:amy"]}, ["ENDPOINT"], None, "byEndpoint"),
    ({"providers": ["openai"]}, ["MCP_SERVER", "DATE"], "amy", "byMcpServer"),  # a plain user alike
    ({}, ["MODEL_GROUP", "PROVIDER"], None, "`groupBy` cannot cross MODEL_GROUP with PROVIDER"),
    ({}, ["TAG", "ENDPOINT"], None, "`groupBy` cannot cross ENDPOINT with TAG"),
    (
        {},
        ["MODEL_GROUP", "ENDPOINT"],
        None,
        "`groupBy` can hold only one of MODEL_GROUP, ENDPOINT, MCP_SERVER",
    ),
    ({}, ["DATE", "USER", "MODEL_GROUP"], None, "under an export grouped by USER"),
]


async def test_what_the_fields_refuse_is_refused_before_an_export_row_or_file_exists(
    litellm: tuple[LiteLLMStore, str], postgres_server: LocalPostgres, redis_url: str, tmp_path: Path
) -> None:
    store, litellm_url = litellm
    store.set_rows(REFUSALS_ROWS)
    await flush(redis_url)
    clock = clock_at(long_after(FIRST_DAY + timedelta(days=len(DAYS))))
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock, export_dir=tmp_path) as gw,
    ):
        for filter_, group_by, viewer, like in REFUSED:
            case = (filter_, group_by, viewer)
            token = None if viewer is None else gw.token(viewer, Role.USER)
            variables = {"filter": {**WHOLE, **filter_}, "format": "CSV", "groupBy": group_by}
            refused = await gw.query(EXPORT, variables, token=token)
            assert refused["data"] is None, (case, refused)
            (error,) = refused["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", case
            if like.startswith("by"):
                name_field = dict(FIELDS.values())[like]
                field = await gw.query(
                    NODES % (like, name_field, "spendExact"), {"filter": variables["filter"]}, token=token
                )
                assert field["data"] is None, case
                assert error["message"] == field["errors"][0]["message"], case
            else:
                assert like in error["message"], case
            assert await exports_made(gw) == 0, case
            assert files_in(tmp_path) == [], case
            audited = await gw.db.fetch_one(
                "SELECT outcome, arguments->'groupBy' FROM audit_log WHERE action = 'exportUsage'"
                " ORDER BY id DESC LIMIT 1"
            )
            assert audited == ("bad_user_input", group_by), case


async def test_every_format_writes_a_buckets_spend_as_the_exact_decimal(
    litellm: tuple[LiteLLMStore, str], postgres_server: LocalPostgres, redis_url: str, tmp_path: Path
) -> None:
    # As doubles 500.1 + 69.69904768 is 569.7990476800001: the export writes the exact sum.
    store, litellm_url = litellm
    store.set_rows(
        [
            make_row(DAYS[0], "amy", HEX_KEYS[0], "gpt-4o", "openai", spend=500.1, model_group="fam"),
            make_row(
                DAYS[1], "amy", HEX_KEYS[1], "gpt-4o-mini", "openai", spend=69.69904768, model_group="fam"
            ),
            make_row(DAYS[2], "bo", HEX_KEYS[1], "gpt-4o", "azure", spend=0.1, model_group="solo"),
        ]
    )
    await flush(redis_url)
    clock = clock_at(long_after(FIRST_DAY + timedelta(days=len(DAYS))))
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock, export_dir=tmp_path / "out") as gw,
    ):
        for fmt in ExportFormat:
            export = await gw.data(EXPORT, {"filter": WHOLE, "format": fmt.value, "groupBy": ["MODEL_GROUP"]})
            path = await downloaded(gw, export["exportUsage"], fmt, tmp_path)
            rows = read_rows(path, fmt, (ExportDimension.MODEL_GROUP,))
            assert [(row["model_group"], row["spend"]) for row in rows] == [
                ("fam", Decimal("569.79904768")),
                ("solo", Decimal("0.1")),
            ], fmt
            if fmt is ExportFormat.XLSX:  # the sheet's number text itself, not a double read back
                assert xlsx_number_texts(path, 1) == ["569.79904768", "0.1"]
            if fmt is ExportFormat.CSV:
                assert path.read_text().splitlines()[1].startswith("fam,569.79904768,")


# --- The export command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "like"),
    [
        (("--group-by", "model_group,provider"), "cannot cross MODEL_GROUP with PROVIDER"),
        (("--group-by", "endpoint,mcp_server"), "only one of MODEL_GROUP"),
        (("--group-by", "model_group", "--provider", "openai"), "`providers` cannot filter model groups"),
    ],
)
def test_the_export_command_refuses_a_grouping_or_filter_the_fields_refuse(
    args: tuple[str, ...], like: str, tmp_path: Path
) -> None:
    """Before it reads its settings or opens a connection (in process: nothing else runs)."""
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["export", "--from", DAYS[0], "--to", DAYS[-1], "--format", "csv", "--out", str(out), *args]
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    assert like in errors[0]
    assert files_in(tmp_path) == []


def test_the_export_command_writes_side_rows_and_refuses_a_shared_key_bucket(
    litellm: tuple[LiteLLMStore, str], database_url: str, tmp_path: Path
) -> None:
    store, litellm_url = litellm
    store.set_rows(REFUSALS_ROWS)
    env = {
        "USAGE_GATEWAY_DATABASE_URL": database_url,
        "USAGE_GATEWAY_LITELLM_URL": litellm_url,
        "USAGE_GATEWAY_LITELLM_MASTER_KEY": store.master_key,
    }
    out = tmp_path / "groups.csv"
    base = ("export", "--from", DAYS[0], "--to", DAYS[-1], "--format", "csv", "--out", str(out))

    shared = run_cli(*base, "--group-by", "date,user,endpoint", env=env)
    assert shared.returncode == 2, shared.stderr
    errors = [line for line in shared.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, shared.stderr
    assert "several users" in errors[0]
    assert "grouped by USER" in errors[0]
    assert files_in(tmp_path) == []

    done = run_cli(*base, "--group-by", "model_group,api_key", env=env)
    assert done.returncode == 0, done.stderr
    header, *lines = out.read_text().splitlines()
    assert header.startswith("model_group,api_key,api_key_id,key_alias,key_name,spend,requests,")
    cells = [line.split(",") for line in lines]
    assert [(cell[0], cell[1], Decimal(cell[5])) for cell in cells] == [
        ("claude-3-5-haiku-20241022", HEX_KEYS[1], Decimal(1)),
        ("gpt-4o", SHARED_KEY, Decimal("0.75")),
    ]
