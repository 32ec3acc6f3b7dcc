"""The dashboard at ``/`` in headless Chromium against a running demo: its numbers are the API's.

One demo process serves every test of the module (it takes ~20 s to start and warm). Each test opens
its own browser context, signs in the way a person does (or through the demo's one-time link), and
compares what the page shows with what the public GraphQL API answers for the same filter.
Screenshots of the main view go to ``var/screenshots/`` (or ``$DASHBOARD_SCREENSHOTS``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from graphql import build_schema, parse, validate
from playwright.sync_api import Browser, BrowserContext, Route, expect

from tests.browser import PageLog, admin_token, launched_chromium, served_gateway
from tests.test_cli_setup import cli
from tests.test_demo import START_TIMEOUT, DemoProcess
from usage_gateway.datasources.exports.records import INLINE_EXPORT_MAX_FACTS
from usage_gateway.server.tokens import issue_token
from usage_gateway.server.web_assets import ASSETS, DASHBOARD_SCRIPTS

REPO = Path(__file__).resolve().parent.parent
AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS", REPO / "var" / "screenshots"))
WARM_TIMEOUT = 180
VIEW_TIMEOUT = 60_000
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"1440x900": {"width": 1440, "height": 900}, "390x844": {"width": 390, "height": 844}}

CARDS = """
query Cards($filter: UsageFilter!) {
  usage(filter: $filter) {
    totals { spend spendExact requests totalTokens successRate averageLatencyMs activeUsers activeApiKeys }
  }
}
"""
USERS_PAGE = """
query Users($filter: UsageFilter!, $after: String) {
  usage(filter: $filter) {
    byUser(first: 500, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { userId } }
  }
}
"""
KEYS = """
query Keys($filter: UsageFilter!) {
  usage(filter: $filter) { byApiKey(first: 500) { totalCount nodes { apiKeyId user { id } } } }
}
"""
OPTIONS = """
query Options($from: Date!, $to: Date!) {
  filterOptions(from: $from, to: $to) { models apiKeys { id user { id } } }
}
"""
AXE_RUN = """
async tags => (await axe.run(document, {runOnly: {type: "tag", values: tags}})).violations
  .map(v => v.id + ": " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))
"""
FORGED_REFRESH = """
async () => {
  const token = localStorage.getItem("usage-gateway:token");
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token},
    body: JSON.stringify({query: "mutation { refreshToday { days } }"}),
  });
  return await response.json();
}
"""


@dataclass(frozen=True)
class Demo:
    base: str
    admin: str
    user: str
    user_id: str
    readonly: str
    link: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    cwd = tmp_path_factory.mktemp("dashboard-demo")
    process = DemoProcess(cwd)
    try:
        base = process.wait_for(r"^Dashboard: (http://\S+)/$", START_TIMEOUT).group(1)
        admin = process.wait_for(r"^Admin token: (\S+)$", 5).group(1)
        user = process.wait_for(r"^User token \((\S+), role user\): (\S+)$", 5)
        link = process.wait_for(r"^(http://\S+/demo/dashboard\?code=\S+)$", 5).group(1)
        process.wait_for(r"^Cache warm: ", WARM_TIMEOUT)  # the numbers no longer move
        secret = (cwd / "var" / "demo-jwt-secret").read_text().strip()
        readonly = issue_token(secret, "auditor", ["adminReadonly"])
        yield Demo(base, admin, user.group(2), user.group(1), readonly, link)
    finally:
        process.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def api(demo: Demo, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        demo.base + "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


class Dashboard:
    """A signed-in page and what it asked for; ``close`` checks it asked no other origin, said no error."""

    def __init__(self, context: BrowserContext, demo: Demo) -> None:
        self.context = context
        self.page = context.new_page()
        self.log = PageLog(allowed_origins=(demo.base,))
        self.log.watch(self.page)
        self.graphql_bodies: list[str] = []
        self.page.on(
            "request",
            lambda request: (
                self.graphql_bodies.append(request.post_data or "")
                if request.url.endswith("/graphql")
                else None
            ),
        )

    def sign_in(self, demo: Demo, token: str, search: str = "") -> Dashboard:
        self.page.goto(demo.base + "/" + search)
        self.page.get_by_label("Token", exact=True).fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.wait_for_view(0)
        return self

    def draws(self) -> int:
        return int(self.page.evaluate("Number(document.documentElement.dataset.draws || 0)"))

    def wait_for_view(self, after: int) -> None:
        self.page.wait_for_function(
            "n => Number(document.documentElement.dataset.draws || 0) > n"
            " && document.documentElement.dataset.loading === 'false'",
            arg=after,
            timeout=VIEW_TIMEOUT,
        )

    def act(self, action: Any) -> None:
        """Run ``action`` (a click, a check) and wait for the view it causes to be drawn."""
        before = self.draws()
        action()
        self.wait_for_view(before)

    def card(self, name: str) -> tuple[str, str]:
        value = self.page.locator(f'[data-card="{name}"] .value')
        return value.get_attribute("data-value") or "", value.inner_text()

    def filter(self) -> dict[str, Any]:
        """The filter the page's view stands for, as the page computes it from its own address."""
        days: dict[str, str] = self.page.evaluate("UG.state.days(UG.state.parse(location.search))")
        query = parse_qs(urlsplit(self.page.url).query)
        return {
            "from": days["from"],
            "to": days["to"],
            "userIds": query.get("user"),
            "apiKeyIds": query.get("key"),
            "models": query.get("model"),
            "providers": query.get("provider"),
            "teamIds": query.get("team"),
            "tag": query.get("tag", [None])[0],
        }

    def close(self) -> None:
        assert self.log.refused == []
        assert self.log.errors == []
        self.context.close()


def open_dashboard(browser: Browser, demo: Demo, **options: Any) -> Dashboard:
    return Dashboard(browser.new_context(**options), demo)


def assert_cards_match_the_api(board: Dashboard, demo: Demo, token: str, *, everyone: bool = True) -> None:
    totals = api(demo, token, CARDS, {"filter": board.filter()})["usage"]["totals"]
    page = board.page
    spend, spend_text = board.card("spend")
    assert Decimal(spend) == Decimal(totals["spendExact"])
    assert spend_text == page.evaluate("v => UG.format.currency(v)", totals["spend"])
    requests, requests_text = board.card("requests")
    assert int(requests) == totals["requests"]
    assert requests_text == page.evaluate("v => UG.format.integer(v)", totals["requests"])
    tokens, tokens_text = board.card("tokens")
    assert int(tokens) == totals["totalTokens"]
    assert tokens_text == page.evaluate("v => UG.format.compact(v)", totals["totalTokens"])
    rate, rate_text = board.card("success-rate")
    assert float(rate) == totals["successRate"]
    assert rate_text == page.evaluate("v => UG.format.percent(v)", totals["successRate"])
    latency, latency_text = board.card("latency")
    assert float(latency) == totals["averageLatencyMs"]
    assert latency_text == page.evaluate("v => UG.format.latency(v)", totals["averageLatencyMs"])
    name, field = ("active-users", "activeUsers") if everyone else ("active-keys", "activeApiKeys")
    active, active_text = board.card(name)
    assert int(active) == totals[field]
    assert active_text == page.evaluate("v => UG.format.integer(v)", totals[field])
    for card in ("spend", "requests", "tokens", "success-rate", "latency", name):
        assert re.search(
            r"vs previous \d+ days|new|no change", page.locator(f'[data-card="{card}"] .change').inner_text()
        )


BUDGETS = """
query Budgets($filter: UsageFilter!) {
  usage(filter: $filter) {
    budgets(first: 10) { totalCount nodes { entity id status } }
    exceeded: budgets(first: 1, status: EXCEEDED) { totalCount }
    atRisk: budgets(first: 1, status: AT_RISK) { totalCount }
  }
}
"""
FORECAST = """
query Forecast($filter: UsageFilter!) {
  usage(filter: $filter) {
    forecast(horizon: MONTH_END) { spend points { date spend spendLow spendHigh } }
  }
}
"""
ANOMALIES = """
query Anomalies($filter: UsageFilter!) {
  usage(filter: $filter) {
    anomalies(dimension: USER, first: 10) {
      totalCount nodes { id date filter { from to userIds apiKeyIds models teamIds providers } }
    }
  }
}
"""
MOVERS = """
query Movers($filter: UsageFilter!) {
  usage(filter: $filter) { movers(dimension: USER, first: 8, metric: SPEND) { nodes { id } } }
}
"""
FORECAST_SETS = """() => Object.fromEntries(Chart.getChart("chart").data.datasets
  .filter(set => set.forecastPart).map(set => [set.forecastPart, set.data.filter(v => v !== null)]))"""
STATUS_TEXT = {"EXCEEDED": "Exceeded", "AT_RISK": "At risk", "OK": "On track"}


def assert_insights_match_the_api(board: Dashboard, demo: Demo) -> None:
    """Issue 17's sections: the budgets and the chart's forecast band are the API's for the view's filter."""
    page = board.page
    expect(page.locator("#budgets-panel")).to_have_attribute("data-state", "shown", timeout=VIEW_TIMEOUT)
    usage = api(demo, demo.admin, BUDGETS, {"filter": board.filter()})["usage"]
    budgets = usage["budgets"]
    items = page.locator("#budgets li")
    assert items.evaluate_all(
        "items => items.map(i => [i.dataset.entity, i.dataset.id, i.dataset.status])"
    ) == [[node["entity"], node["id"], node["status"]] for node in budgets["nodes"]]
    # Text content: the sections are not rendered until scrolled near (content-visibility), yet read out.
    texts = items.locator(".status-text").all_text_contents()
    assert [text.split(":")[0].split(" on ")[0] for text in texts] == [
        STATUS_TEXT[node["status"]] for node in budgets["nodes"]
    ]
    summary = page.locator("#budgets-summary").text_content() or ""
    assert summary.startswith(
        f"{usage['exceeded']['totalCount']} exceeded, {usage['atRisk']['totalCount']} at risk"
    )
    assert f"of {budgets['totalCount']}" in summary

    # The forecast band: the chart's lines are the API's points, labelled as a forecast with its method.
    expect(page.locator("#forecast-note")).to_contain_text("Method:", timeout=VIEW_TIMEOUT)
    expect(page.locator("#forecast-note")).to_contain_text("a projection, not data")
    points = api(demo, demo.admin, FORECAST, {"filter": board.filter()})["usage"]["forecast"]["points"]
    assert points
    page.wait_for_function(f"() => ({FORECAST_SETS})().mid !== undefined")
    sets = page.evaluate(FORECAST_SETS)
    assert sets["mid"] == [point["spend"] for point in points]
    assert sets["low"] == [point["spendLow"] for point in points]
    assert sets["high"] == [point["spendHigh"] for point in points]


@pytest.mark.slow
def test_the_demo_link_signs_in_and_the_cards_show_the_api_numbers(browser: Browser, demo: Demo) -> None:
    board = open_dashboard(browser, demo)
    page = board.page
    visit = page.goto(demo.link)
    assert visit is not None
    assert visit.headers["cache-control"] == "no-store"
    board.wait_for_view(0)
    # The code left the address and the token is in no address: the page keeps it in its storage.
    assert page.url == demo.base + "/"
    assert page.evaluate("localStorage.getItem('usage-gateway:token')") == demo.admin
    expect(page.locator("#viewer")).to_contain_text("admin")
    today = datetime.now(UTC).date()
    assert board.filter()["from"] == (today - timedelta(days=29)).isoformat()
    assert board.filter()["to"] == today.isoformat()
    assert_cards_match_the_api(board, demo, demo.admin)
    expect(page.locator("#freshness")).to_contain_text("No missing days")
    expect(page.locator("#freshness")).to_contain_text("As of")
    expect(page.locator("#period")).to_contain_text("30 UTC days")
    # One request for the first view (after the sign-in's own), asking for one table only.
    dashboards = [body for body in board.graphql_bodies if "query Dashboard" in body]
    assert len(dashboards) == 1
    assert '"tableUser":true' in dashboards[0]
    assert '"tableModel":false' in dashboards[0]
    assert_insights_match_the_api(board, demo)

    # An anomaly's link applies its filter (that user, that day) to the whole view.
    anomalies = api(demo, demo.admin, ANOMALIES, {"filter": board.filter()})["usage"]["anomalies"]
    assert anomalies["totalCount"] > 0  # the demo's data has some
    expect(page.locator("#anomalies li")).to_have_count(len(anomalies["nodes"]), timeout=VIEW_TIMEOUT)
    shown = page.locator("#anomalies li").evaluate_all(
        "items => items.map(i => [i.dataset.id, i.dataset.date])"
    )
    assert shown == [[node["id"], node["date"]] for node in anomalies["nodes"]]
    first = anomalies["nodes"][0]["filter"]
    board.act(lambda: page.locator("#anomalies li a").first.click())
    applied = board.filter()
    assert {**first, "tag": None} == {name: applied[name] for name in (*first, "tag")}
    totals = api(demo, demo.admin, CARDS, {"filter": applied})["usage"]["totals"]
    assert Decimal(board.card("spend")[0]) == Decimal(totals["spendExact"])
    assert int(board.card("requests")[0]) == totals["requests"]
    board.act(page.go_back)
    assert page.url == demo.base + "/"

    # The top movers are the API's, in its order; a mover's name filters the view on it.
    movers = api(demo, demo.admin, MOVERS, {"filter": board.filter()})["usage"]["movers"]["nodes"]
    expect(page.locator("#movers li")).to_have_count(len(movers), timeout=VIEW_TIMEOUT)
    assert page.locator("#movers li").evaluate_all("items => items.map(i => i.dataset.id)") == [
        node["id"] for node in movers
    ]
    board.act(lambda: page.locator("#movers li button").first.click())
    assert board.filter()["userIds"] == [movers[0]["id"]]
    board.act(page.go_back)
    assert page.url == demo.base + "/"

    # The link works once; the browser stays signed in on a reload.
    assert httpx.get(demo.link, timeout=30).status_code == 410
    before = board.draws()
    page.reload()
    board.wait_for_view(0)
    assert before >= 1
    assert_cards_match_the_api(board, demo, demo.admin)
    board.close()


def wait_for_insights(board: Dashboard) -> None:
    """Until every insight section is drawn: its list, or its note."""
    for panel in ("budgets", "anomalies", "movers"):
        expect(board.page.locator(f"#{panel}-panel")).to_have_attribute(
            "data-state", re.compile("shown|note"), timeout=VIEW_TIMEOUT
        )
    expect(board.page.locator("#forecast-note")).to_be_visible(timeout=VIEW_TIMEOUT)


def ask_for_fields_an_older_gateway_lacks(route: Route) -> None:
    body = route.request.post_data or ""
    if '"query Budgets' in body or '"query Forecast' in body:
        body = body.replace("budgets(", "budgetsV0(").replace("forecast(", "forecastV0(")
    route.fallback(post_data=body)


@pytest.mark.slow
def test_numbers_follow_the_viewers_locale_and_days_stay_utc_days(browser: Browser, demo: Demo) -> None:
    # Kiritimati is UTC+14: for most of the UTC day its calendar date is already tomorrow.
    board = open_dashboard(browser, demo, locale="de-DE", timezone_id="Pacific/Kiritimati")
    # As an older gateway would, this one answers the budgets and the forecast with "no such field".
    board.page.route("**/graphql", ask_for_fields_an_older_gateway_lacks)
    board.sign_in(demo, demo.admin)
    assert board.filter()["to"] == datetime.now(UTC).date().isoformat()
    assert_cards_match_the_api(board, demo, demo.admin)
    spend_text = board.card("spend")[1]
    requests, requests_text = board.card("requests")
    assert re.fullmatch(r"[\d.]+,\d{2}\s\$", spend_text), spend_text  # German: 4.067,17 $
    assert int(requests) >= 1000
    assert "." in requests_text
    expect(board.page.locator("#period")).to_contain_text("UTC days")
    # Those sections hide themselves with a note; the chart has no forecast lines, the page no error.
    for section in ("#budgets-note", "#forecast-note"):
        expect(board.page.locator(section)).to_contain_text("not available from this gateway")
    expect(board.page.locator("#budgets")).to_be_hidden()
    assert board.page.evaluate(FORECAST_SETS) == {}
    expect(board.page.locator("#anomalies-panel")).to_have_attribute("data-state", "shown")
    board.close()


@pytest.mark.slow
def test_a_range_or_filter_change_updates_the_address_and_the_numbers(browser: Browser, demo: Demo) -> None:
    board = open_dashboard(browser, demo).sign_in(demo, demo.admin)
    page = board.page
    thirty = board.card("spend")[0]

    def operations() -> list[str]:
        return [json.loads(body)["query"].split("(")[0].split()[-1] for body in board.graphql_bodies]

    requests_before = len(board.graphql_bodies)
    board.act(lambda: page.get_by_role("button", name="7 days").click())
    # One request per view change; once it is drawn, one for each insight section whose filter changed.
    expect(page.locator("#movers-panel")).to_have_attribute("aria-busy", "false", timeout=VIEW_TIMEOUT)
    insights = ["Anomalies", "Budgets", "Forecast", "Movers"]
    assert sorted(operations()[requests_before + 1 :]) == insights
    assert operations()[requests_before] == "Dashboard"
    requests_before = len(board.graphql_bodies)
    board.act(lambda: page.get_by_role("button", name="Week", exact=True).click())
    assert operations()[requests_before:] == ["Dashboard"]  # the insights' filter is unchanged
    board.act(lambda: page.get_by_role("button", name="Day", exact=True).click())
    assert "range=7d" in page.url
    assert page.get_by_role("button", name="7 days").get_attribute("aria-pressed") == "true"
    assert Decimal(board.card("spend")[0]) < Decimal(thirty)
    assert_cards_match_the_api(board, demo, demo.admin)

    # The keyboard reaches the range buttons too.
    page.get_by_role("button", name="90 days").focus()
    board.act(lambda: page.keyboard.press("Enter"))
    assert "range=90d" in page.url
    board.act(lambda: page.get_by_role("button", name="7 days").click())

    # A model from the picker: the address names it, the numbers follow.
    days = board.filter()
    model = api(demo, demo.admin, OPTIONS, {"from": days["from"], "to": days["to"]})["filterOptions"][
        "models"
    ][0]
    page.locator('details[data-filter="models"] summary').click()
    board.act(lambda: page.locator(f'details[data-filter="models"] input[value="{model}"]').check())
    assert parse_qs(urlsplit(page.url).query)["model"] == [model]
    assert board.filter()["models"] == [model]
    assert_cards_match_the_api(board, demo, demo.admin)
    expect(page.locator("#chips")).to_contain_text(model)
    # Budgets are refused under a model filter: the section says why, and only it.
    expect(page.locator("#budgets-note")).to_contain_text(
        refusal(demo, BUDGETS, {"filter": board.filter()}), timeout=VIEW_TIMEOUT
    )
    expect(page.locator("#budgets")).to_be_hidden()

    # A click on a row of the users table filters on that user; keys then cascade from the user.
    board.act(lambda: page.locator("#table tbody tr").first.locator(".row-link").click())
    user_id = parse_qs(urlsplit(page.url).query)["user"][0]
    assert_cards_match_the_api(board, demo, demo.admin)
    page.locator('details[data-filter="keys"] summary').click()
    expect(page.locator('details[data-filter="keys"] input[type="checkbox"]:visible').first).to_be_visible()
    offered = set(page.locator('details[data-filter="keys"] input[type="checkbox"]').evaluate_all(
        "boxes => boxes.map(box => box.value)"
    ))  # fmt: skip
    options = api(demo, demo.admin, OPTIONS, {"from": days["from"], "to": days["to"]})["filterOptions"]
    owned = {key["id"] for key in options["apiKeys"] if key["user"] and key["user"]["id"] == user_id}
    assert offered == owned
    assert offered

    # A custom range, then Back: the address is the view.
    page.get_by_role("button", name="Custom").click()
    page.get_by_label("From", exact=True).fill("2026-11-01")
    board.act(lambda: page.get_by_role("button", name="Apply").click())
    assert "range=custom" in page.url
    assert "from=2026-11-01" in page.url
    assert board.filter()["from"] == "2026-11-01"
    assert_cards_match_the_api(board, demo, demo.admin)
    # A range past the gateway's limit: its error is shown, the last numbers stay greyed out.
    page.get_by_label("From", exact=True).fill("2020-01-01")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#alert")).to_contain_text("at most 400 are allowed")
    expect(page.locator("main")).to_have_class(re.compile(r"\bstale\b"))
    page.go_back()
    expect(page.locator("main")).not_to_have_class(re.compile(r"\bstale\b"), timeout=VIEW_TIMEOUT)
    expect(page.locator("#alert")).to_be_hidden()
    board.act(page.go_back)
    assert "range=7d" in page.url
    assert "user=" in page.url
    assert_cards_match_the_api(board, demo, demo.admin)

    # A shared link opens the same view.
    shared = page.url
    other = open_dashboard(browser, demo).sign_in(demo, demo.admin, "?" + urlsplit(shared).query)
    assert other.page.url == shared
    assert other.card("spend") == board.card("spend")
    other.close()
    board.close()


TEAMS_AND_TAGS = """
query TeamsAndTags($from: Date!, $to: Date!, $teamIds: [ID!], $tags: Boolean!) {
  filterOptions(from: $from, to: $to, teamIds: $teamIds) {
    teams { id alias }
    apiKeys { id }
    tags @include(if: $tags)
  }
}
"""
# Tab -> (Usage field, the node's id field): the tables issue 16 added, each asked for in its own request.
SIDE_TABLES = {
    "Teams": ("byTeam", "teamId"),
    "Tags": ("byTag", "tag"),
    "Model groups": ("byModelGroup", "modelGroup"),
    "Endpoints": ("byEndpoint", "endpoint"),
    "MCP tools": ("byMcpServer", "mcpTool"),
}


def side_query(tab: str) -> str:
    field, key = SIDE_TABLES[tab]
    return (
        f"query Side($filter: UsageFilter!) {{ usage(filter: $filter) {{"
        f" {field}(first: 20) {{ nodes {{ {key} metrics {{ spendExact }} }} }} }} }}"
    )


def assert_table_matches_the_api(board: Dashboard, demo: Demo, tab: str) -> None:
    """The tab's rows (id and exact spend, in order) are the API's first page for the page's filter."""
    field, key = SIDE_TABLES[tab]
    button = board.page.get_by_role("button", name=tab, exact=True)
    if button.get_attribute("aria-pressed") != "true":
        board.act(button.click)
    nodes = api(demo, demo.admin, side_query(tab), {"filter": board.filter()})["usage"][field]["nodes"]
    shown = board.page.locator("#table tbody tr[data-id]").evaluate_all(
        "rows => rows.map(row => [row.dataset.id, row.querySelector('td[data-value]').dataset.value])"
    )
    assert shown == [[node[key], node["metrics"]["spendExact"]] for node in nodes]


def refusal(demo: Demo, query: str, variables: dict[str, Any]) -> str:
    """The message of the API's first error for ``query``, all of them BAD_USER_INPUT."""
    body = httpx.post(
        demo.base + "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {demo.admin}"},
        timeout=120,
    ).json()
    assert body["data"] is None
    assert {error["extensions"]["code"] for error in body["errors"]} == {"BAD_USER_INPUT"}
    message: str = body["errors"][0]["message"]
    return message


@pytest.mark.slow
def test_teams_tags_and_side_breakdowns_filter_and_show_the_api_numbers(browser: Browser, demo: Demo) -> None:
    # Two days: a tag filter reads LiteLLM's tag activity of the range and of the period before it.
    today = datetime.now(UTC).date()
    two_days = f"?range=custom&from={today - timedelta(days=1)}&to={today}"
    board = open_dashboard(browser, demo, bypass_csp=True).sign_in(demo, demo.admin, two_days)
    page = board.page
    days = board.filter()
    span = {"from": days["from"], "to": days["to"]}
    assert_table_matches_the_api(board, demo, "Teams")
    assert "table=team" in page.url

    # A team from the picker: the cards are the API's for that team, and the keys cascade from it.
    teams = api(demo, demo.admin, TEAMS_AND_TAGS, {**span, "teamIds": None, "tags": True})["filterOptions"]
    team = next(t for t in teams["teams"] if t["alias"] and t["id"] != "no-team")
    page.locator('details[data-filter="teams"] summary').click()
    board.act(lambda: page.locator(f'details[data-filter="teams"] input[value="{team["id"]}"]').check())
    assert parse_qs(urlsplit(page.url).query)["team"] == [team["id"]]
    assert_cards_match_the_api(board, demo, demo.admin)
    expect(page.locator("#chips")).to_contain_text(team["alias"])
    assert page.locator("#table tbody tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)") == [
        team["id"]
    ]
    page.locator('details[data-filter="keys"] summary').click()
    expect(page.locator('details[data-filter="keys"] input[type="checkbox"]').first).to_be_visible()
    offered = set(page.locator('details[data-filter="keys"] input[type="checkbox"]').evaluate_all(
        "boxes => boxes.map(box => box.value)"
    ))  # fmt: skip
    in_team = api(demo, demo.admin, TEAMS_AND_TAGS, {**span, "teamIds": [team["id"]], "tags": False})
    assert offered == {key["id"] for key in in_team["filterOptions"]["apiKeys"]}
    assert offered < {key["id"] for key in teams["apiKeys"]}
    page.keyboard.press("Escape")  # closes the picker
    expect(page.locator('details[data-filter="keys"] input[type="search"]')).to_be_hidden()
    board.act(lambda: page.get_by_role("button", name=f"Remove filter Team {team['alias']}").click())
    assert "team=" not in page.url

    # The tags table says why it need not add up; one tag from the picker filters the cards.
    assert_table_matches_the_api(board, demo, "Tags")
    expect(page.locator("#table-note")).to_contain_text("need not add up to the totals")
    tag = teams["tags"][0]
    page.locator('details[data-filter="tag"] summary').click()
    board.act(lambda: page.locator(f'details[data-filter="tag"] input[type="radio"][value="{tag}"]').check())
    assert parse_qs(urlsplit(page.url).query)["tag"] == [tag]
    assert_cards_match_the_api(board, demo, demo.admin)

    # Under a tag the API refuses model groups: the table shows its message, the rest of the view stands.
    board.act(lambda: page.get_by_role("button", name="Model groups", exact=True).click())
    message = refusal(demo, side_query("Model groups"), {"filter": board.filter()})
    expect(page.locator("#table .refused")).to_contain_text(message)
    expect(page.locator("#alert")).to_be_hidden()
    expect(page.locator("main")).not_to_have_class(re.compile(r"\bstale\b"))
    assert_cards_match_the_api(board, demo, demo.admin)
    page.add_script_tag(path=AXE)
    assert page.evaluate(AXE_RUN, WCAG_AA) == []

    # Without the tag, model groups, endpoints and MCP tools are the API's.
    board.act(lambda: page.get_by_role("button", name=f"Remove filter Tag {tag}").click())
    for tab in ("Model groups", "Endpoints", "MCP tools"):
        assert_table_matches_the_api(board, demo, tab)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "dashboard-side-tables-1440x900.png", full_page=True)
    board.close()


CHART_SERIES = """() => {
  const chart = Chart.getChart("chart");
  return chart.data.datasets.map(set => ({label: set.label, data: set.data}));
}"""
SERIES = """
query Series($filter: UsageFilter!, $granularity: Granularity!) {
  usage(filter: $filter) { timeSeries(granularity: $granularity) { date metrics { spend requests } } }
}
"""


@pytest.mark.slow
def test_the_chart_stacks_by_model_adds_up_to_the_total_and_has_a_tooltip(
    browser: Browser, demo: Demo
) -> None:
    board = open_dashboard(browser, demo).sign_in(demo, demo.admin)
    page = board.page
    board.act(lambda: page.get_by_role("button", name="Week", exact=True).click())
    board.act(lambda: page.get_by_role("button", name="Requests", exact=True).click())
    board.act(lambda: page.get_by_label("Stack by").select_option("model"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["stack"] == ["model"]
    assert query["granularity"] == ["WEEK"]
    assert query["metric"] == ["requests"]
    assert '"stackModel":true' in board.graphql_bodies[-1]
    sets = page.evaluate(CHART_SERIES)
    assert len(sets) > 2
    assert sets[-1]["label"] == "Other"
    variables = {"filter": board.filter(), "granularity": "WEEK"}
    series = api(demo, demo.admin, SERIES, variables)["usage"]["timeSeries"]
    # Every week's stack adds up to the week's requests.
    assert [sum(s["data"][i] for s in sets) for i in range(len(series))] == [
        point["metrics"]["requests"] for point in series
    ]
    box = page.locator("#chart").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => Chart.getChart('chart').tooltip.getActiveElements().length > 0")
    assert "UTC days" in (page.locator("#chart").get_attribute("aria-label") or "")
    board.close()


@pytest.mark.slow
def test_paging_the_users_table_walks_every_row_once(browser: Browser, demo: Demo) -> None:
    board = open_dashboard(browser, demo).sign_in(demo, demo.admin)
    page = board.page
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += page.locator("#table tbody tr").evaluate_all("rows => rows.map(row => row.dataset.id)")
        if page.locator("#next-page").is_disabled():
            break
        board.act(lambda: page.locator("#next-page").click())
        assert "after=" in page.url

    expected: list[str] = []
    after = None
    while True:
        answer = api(demo, demo.admin, USERS_PAGE, {"filter": board.filter(), "after": after})["usage"][
            "byUser"
        ]
        expected += [node["userId"] for node in answer["nodes"]]
        if not answer["pageInfo"]["hasNextPage"]:
            break
        after = answer["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == answer["totalCount"]
    assert seen == expected
    assert pages == -(-len(expected) // 20)
    expect(page.locator("#page-info")).to_contain_text(f"of {answer['totalCount']}")

    # Previous goes back one page; a new sort starts again at page one.
    board.act(lambda: page.locator("#previous-page").click())
    assert page.locator("#table tbody tr").first.get_attribute("data-id") == expected[(pages - 2) * 20]
    board.act(lambda: page.locator("th button.sort", has_text="Requests").click())
    assert "sort=REQUESTS" in page.url
    assert "after=" not in page.url
    requests = page.locator("#table tbody tr td:nth-child(4)").all_inner_texts()
    numbers = [int(re.sub(r"\D", "", text)) for text in requests]
    assert numbers == sorted(numbers, reverse=True)
    board.close()


@pytest.mark.slow
def test_a_user_token_sees_only_its_own_usage(browser: Browser, demo: Demo) -> None:
    board = open_dashboard(browser, demo).sign_in(demo, demo.user)
    page = board.page
    expect(page.locator("#scope")).to_have_text("· my usage")
    expect(page.get_by_role("button", name="Users", exact=True)).to_be_hidden()
    expect(page.locator('details[data-filter="users"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Refresh today")).to_be_hidden()
    assert "table=model" in page.url  # the by-user table is no view of theirs
    assert_cards_match_the_api(board, demo, demo.user, everyone=False)
    # The user's own numbers are the admin's for this one user.
    mine = api(demo, demo.admin, CARDS, {"filter": {**board.filter(), "userIds": [demo.user_id]}})
    assert Decimal(board.card("spend")[0]) == Decimal(mine["usage"]["totals"]["spendExact"])

    board.act(lambda: page.get_by_role("button", name="Keys", exact=True).click())
    shown = set(page.locator("#table tbody tr").evaluate_all("rows => rows.map(row => row.dataset.id)"))
    everyone = api(demo, demo.admin, KEYS, {"filter": board.filter()})["usage"]["byApiKey"]["nodes"]
    owned = {node["apiKeyId"] for node in everyone if node["user"] and node["user"]["id"] == demo.user_id}
    assert shown == owned
    assert shown
    # An address naming someone else is answered for the user alone (the page drops the users filter).
    other = open_dashboard(browser, demo).sign_in(demo, demo.user, "?user=someone.else")
    assert "user=" not in other.page.url
    assert other.card("spend") == board.card("spend")
    other.close()
    board.close()


@pytest.mark.slow
def test_a_read_only_admin_has_no_refresh_and_a_forged_refresh_fails(browser: Browser, demo: Demo) -> None:
    board = open_dashboard(browser, demo).sign_in(demo, demo.readonly)
    page = board.page
    expect(page.locator("#viewer")).to_contain_text("admin readonly")
    expect(page.get_by_role("button", name="Refresh today")).to_be_hidden()
    assert_cards_match_the_api(board, demo, demo.readonly)
    answer = page.evaluate(FORGED_REFRESH)
    assert answer["data"] is None
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["FORBIDDEN"]
    board.close()

    # An admin has the button, and it refreshes today.
    admin = open_dashboard(browser, demo).sign_in(demo, demo.admin)
    admin.act(lambda: admin.page.get_by_role("button", name="Refresh today").click())
    expect(admin.page.locator("#export-status")).to_contain_text("Refreshed")
    admin.close()


@pytest.mark.slow
def test_an_export_downloads_a_file_whose_total_equals_the_cards(browser: Browser, demo: Demo) -> None:
    board = open_dashboard(browser, demo, accept_downloads=True).sign_in(demo, demo.admin, "?range=7d")
    page = board.page
    page.get_by_label("Export format").select_option("CSV")
    with page.expect_download(timeout=120_000) as started:
        page.get_by_role("button", name="Export").click()
    download = started.value
    path = Path(download.path())
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert rows
    assert sum(Decimal(row["spend"]) for row in rows) == Decimal(board.card("spend")[0])
    assert sum(int(row["requests"]) for row in rows) == int(board.card("requests")[0])
    assert sum(int(row["total_tokens"]) for row in rows) == int(board.card("tokens")[0])
    expect(page.locator("#export-status")).to_contain_text("Export ready")
    assert download.suggested_filename.endswith(".csv")
    board.close()


@pytest.mark.slow
@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_the_page_passes_axe_and_needs_no_other_origin(browser: Browser, demo: Demo, size: str) -> None:
    # axe-core is injected as an inline script: the page's own policy forbids that, so the test lifts it.
    board = open_dashboard(browser, demo, viewport=VIEWPORTS[size], bypass_csp=True).sign_in(demo, demo.admin)
    page = board.page
    wait_for_insights(board)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"dashboard-{size}.png"
    page.screenshot(path=shot, full_page=True)
    print(f"screenshot: {shot}")
    page.add_script_tag(path=AXE)
    page.locator(".insights").scroll_into_view_if_needed()  # rendered, so that axe checks its contrast
    # The page fits the viewport's width (only the table scrolls sideways, in its own box).
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size]["width"]
    violations = page.evaluate(AXE_RUN, WCAG_AA)
    assert violations == []
    # With a filter picker open.
    page.locator('details[data-filter="models"] summary').click()
    expect(page.locator('details[data-filter="models"] input[type="checkbox"]').first).to_be_visible()
    violations = page.evaluate(AXE_RUN, WCAG_AA)
    assert violations == []
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size]["width"]
    served = {urlsplit(url).path for url in board.log.requests}
    assert {"/assets/chart.js", *(f"/assets/dashboard-{name}" for name in DASHBOARD_SCRIPTS)} <= served
    board.close()

    # The sign-in form, and a user's own page.
    board = open_dashboard(browser, demo, viewport=VIEWPORTS[size], bypass_csp=True)
    page = board.page
    page.goto(demo.base + "/")
    expect(page.get_by_label("Token", exact=True)).to_be_focused()
    page.add_script_tag(path=AXE)
    assert page.evaluate(AXE_RUN, WCAG_AA) == []
    board.sign_in(demo, demo.user)
    wait_for_insights(board)
    page.add_script_tag(path=AXE)
    assert page.evaluate(AXE_RUN, WCAG_AA) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size]["width"]
    board.close()


_BIG_MONTH = (date(2026, 2, 1), date(2026, 2, 28))
_FACTS_PER_DAY = 2_000  # 56,000 facts in February: past INLINE_EXPORT_MAX_FACTS, a background export


def _seed_a_big_month(database_url: str) -> None:
    """February with many facts, January with one a day (the previous period), every day stored."""
    assert _FACTS_PER_DAY * 28 > INLINE_EXPORT_MAX_FACTS
    with psycopg.connect(database_url, autocommit=True) as conn:
        for (first, last), per_day in (
            ((date(2026, 1, 4), date(2026, 1, 31)), 1),
            (_BIG_MONTH, _FACTS_PER_DAY),
        ):
            conn.execute(
                "INSERT INTO usage_facts (date, api_key, litellm_user_id, model, provider, user_id, spend,"
                " prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
                " total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms,"
                " timed_requests)"
                " SELECT d::date, lpad(to_hex(n), 64, '0'), 'u', 'gpt-4o', 'openai', 'u-' || (n %% 7),"
                " 0.0123456789, 3, 4, 0, 0, 7, 2, 2, 0, 120, 2"
                " FROM generate_series(%s::date, %s::date, interval '1 day') AS d,"
                " generate_series(1, %s) AS n",
                (first, last, per_day),
            )
            conn.execute(
                "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
                " total_tokens) SELECT d::date, 'closed', now(), true, %s, %s, %s, %s"
                " FROM generate_series(%s::date, %s::date, interval '1 day') AS d",
                (per_day, Decimal("0.0123456789") * per_day, 2 * per_day, 7 * per_day, first, last),
            )


def test_a_background_export_shows_its_progress_then_downloads(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    _seed_a_big_month(database_url)
    with served_gateway(database_url, dashboard=True, export_dir=tmp_path) as url:
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        log = PageLog(allowed_origins=(url,))
        log.watch(page)
        page.goto(url + "/?range=custom&from=2026-02-01&to=2026-02-28")
        page.get_by_label("Token", exact=True).fill(admin_token())
        page.get_by_role("button", name="Sign in").click()
        spend = page.locator('[data-card="spend"] .value')
        expect(spend).to_have_attribute("data-value", re.compile(r"\d"), timeout=VIEW_TIMEOUT)
        with page.expect_download(timeout=120_000) as started:
            page.get_by_role("button", name="Export").click()
            expect(page.locator("#export-status")).to_contain_text("in the background", timeout=VIEW_TIMEOUT)
            expect(page.locator("#export-status progress")).to_have_count(1)
        with Path(started.value.path()).open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == 28 * _FACTS_PER_DAY
        assert sum(Decimal(row["spend"]) for row in rows) == Decimal(spend.get_attribute("data-value") or "")
        expect(page.locator("#export-status")).to_contain_text("56,000 rows")
        assert log.refused == []
        assert log.errors == []
        context.close()


def test_the_dashboard_is_off_unless_enabled_and_serves_only_its_own_assets(database_url: str) -> None:
    with served_gateway(database_url) as url:
        assert httpx.get(url + "/").status_code == 404
        assert httpx.get(url + "/assets/chart.js").status_code == 404
    with served_gateway(database_url, dashboard=True) as url:
        page = httpx.get(url + "/")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "style-src 'self';" in policy
        assert page.headers["cache-control"] == "no-cache"
        assert "http" not in page.text.split("<body>")[0]
        for name in ("chart.js", "dashboard-dashboard.css", *(f"dashboard-{n}" for n in DASHBOARD_SCRIPTS)):
            assert name in ASSETS
            digest = page.text.split(f"/assets/{name}?v=", 1)[1].split('"', 1)[0]
            asset = httpx.get(f"{url}/assets/{name}?v={digest}")
            assert asset.status_code == 200, name
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert httpx.get(url + "/graphql", headers={"Accept": "text/html"}).status_code != 200  # no GraphiQL


def test_a_bad_token_is_refused_with_a_message(browser: Browser, database_url: str) -> None:
    with served_gateway(database_url, dashboard=True) as url:
        page = browser.new_page()
        log = PageLog(allowed_origins=(url,))
        log.watch(page)
        page.goto(url + "/")
        page.get_by_label("Token", exact=True).fill("not-a-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#signin-error")).to_contain_text("refused this token")
        expect(page.locator("#main")).to_be_hidden()
        # A valid token signs in; the page then keeps it across a reload, and Sign out forgets it.
        page.get_by_label("Token", exact=True).fill(admin_token())
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#cards .card")).to_have_count(6, timeout=VIEW_TIMEOUT)
        page.reload()
        expect(page.locator("#cards .card")).to_have_count(6, timeout=VIEW_TIMEOUT)
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("Token", exact=True)).to_be_visible()
        assert page.evaluate("localStorage.getItem('usage-gateway:token')") is None
        assert log.refused == []
        assert log.errors_but_unauthenticated() == []
        page.close()


# Runs api.js in node with a stand-in `fetch` that records each document the page would send.
_DOCUMENTS = """
globalThis.window = {}; globalThis.UG = {};
globalThis.document = {getElementById: () => ({textContent: '{"endpoint": "/graphql"}'})};
const sent = [];
globalThis.fetch = (url, options) => {
  sent.push(JSON.parse(options.body).query);
  return new Promise(() => {});
};
eval(require("fs").readFileSync(process.argv[1], "utf8"));
for (const [name, send] of Object.entries(UG.api)) if (typeof send === "function") send("token", {}, "CSV");
console.log(JSON.stringify(sent));
"""


def test_every_document_the_page_sends_is_valid_against_the_exported_schema() -> None:
    # A renamed or dropped field in schema/schema.graphql fails here at once, without a browser.
    node = shutil.which("node")
    assert node, "node is not installed: `make setup` installs it"
    script = REPO / "server" / "static" / "dashboard" / "api.js"
    out = subprocess.run([node, "-e", _DOCUMENTS, str(script)], capture_output=True, text=True, check=True)
    documents = json.loads(out.stdout)
    names = {document.split("(")[0].split("{")[0].split()[-1] for document in documents}
    assert {"Dashboard", "Breakdown", "TagOptions", "Budgets", "Forecast", "Anomalies", "Movers"} <= names
    schema = build_schema((REPO / "schema" / "schema.graphql").read_text(encoding="utf-8"))
    for document in documents:
        assert [error.message for error in validate(schema, parse(document))] == [], document


def test_serve_with_the_dashboard_stops_with_one_line_when_its_assets_are_missing(tmp_path: Path) -> None:
    env = {
        "USAGE_GATEWAY_DATABASE_URL": "postgresql://gw@127.0.0.1:1/usage",
        "USAGE_GATEWAY_DASHBOARD": "true",
        "USAGE_GATEWAY_WEB_ASSETS_DIR": str(tmp_path / "nowhere"),
    }
    result = cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "the browser assets are not installed" in result.stderr
    assert "make setup" in result.stderr
    assert "Traceback" not in result.stderr
