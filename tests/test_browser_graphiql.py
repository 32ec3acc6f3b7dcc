"""GraphiQL in headless Chromium: it renders and runs a query with no origin but the gateway's reachable."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import PageLog, admin_token, launched_chromium, served_gateway
from usage_gateway.server.graphiql import GRAPHIQL_SCRIPTS, GRAPHIQL_STYLES

GRAPHIQL_ASSETS = (*GRAPHIQL_STYLES, *GRAPHIQL_SCRIPTS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def open_graphiql(browser: Browser, url: str, search: str = "") -> tuple[Page, PageLog]:
    page = browser.new_page()
    log = PageLog(allowed_origins=(origin(url),))
    log.watch(page)
    page.goto(url + "/graphql" + search)
    return page, log


def run_query(page: Page) -> None:
    page.locator(".graphiql-execute-button").click()


def result_text(page: Page) -> str:
    return page.locator(".graphiql-response .CodeMirror").inner_text()


def test_graphiql_renders_and_runs_a_query_with_only_the_gateway_reachable(
    browser: Browser, database_url: str
) -> None:
    with served_gateway(database_url, graphiql=True) as url:
        page, log = open_graphiql(browser, url)
        expect(page.locator(".graphiql-container")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("Loading…")).to_have_count(0)
        expect(page.locator(".graphiql-query-editor")).to_contain_text("viewer")

        # A token typed into the Headers tab is sent, and the answer is drawn in the result pane.
        page.get_by_text("Headers", exact=True).click()
        headers_editor = page.locator(".graphiql-editor-tool .graphiql-editor:visible .CodeMirror")
        headers_editor.click()
        page.keyboard.insert_text(json.dumps({"Authorization": f"Bearer {admin_token()}"}))
        # GraphiQL stores the header half a second after the last keystroke (a run before that keeps it
        # for this tab only), as a person typing it would find it.
        page.wait_for_function("() => localStorage.getItem('graphiql:headers')")
        run_query(page)
        expect(page.locator(".graphiql-response")).to_contain_text('"id": "admin"', timeout=10_000)
        expect(page.locator(".graphiql-response")).to_contain_text('"ADMIN"')

        # With the token, the schema arrives through introspection: the documentation pane lists the
        # root fields (before it, every request is refused: there is no anonymous access).
        page.get_by_role("button", name="Re-fetch GraphQL schema").click()
        page.get_by_role("button", name="Show Documentation Explorer").click()
        docs = page.locator(".graphiql-doc-explorer")
        expect(docs).to_contain_text("UsageFilter", timeout=10_000)
        docs.get_by_role("link", name="Query").click()
        expect(docs).to_contain_text("filterOptions")

        assert log.refused == []
        # The schema request made before the token was typed is refused (401); nothing else failed.
        assert log.errors_but_unauthenticated() == []
        served = {urlsplit(request).path for request in log.requests}
        assert {f"/assets/{name}" for name in GRAPHIQL_ASSETS} <= served

        # The header stays in this browser (GraphiQL's storage), not in the address.
        page.reload()
        expect(page.locator(".graphiql-container")).to_be_visible(timeout=15_000)
        run_query(page)
        expect(page.locator(".graphiql-response")).to_contain_text('"id": "admin"', timeout=10_000)
        assert admin_token().split(".")[2] not in page.url
        assert "q=" not in page.url  # the welcome text is not copied into the address
        page.close()


def test_graphiql_keeps_the_query_in_the_address_so_it_can_be_shared(
    browser: Browser, database_url: str
) -> None:
    with served_gateway(database_url, graphiql=True) as url:
        page, log = open_graphiql(browser, url, "?q=" + quote("query Mine { viewer { id } }"))
        expect(page.locator(".graphiql-query-editor")).to_contain_text("query Mine", timeout=15_000)
        page.locator(".graphiql-query-editor .CodeMirror").click()
        page.keyboard.press("Control+End")
        page.keyboard.insert_text("\n# shared")
        expect(page).to_have_url(re.compile(r"[?&]q=query\+Mine.*%23\+shared"))
        assert log.refused == []
        assert log.errors_but_unauthenticated() == []
        page.close()


def test_the_page_allows_scripts_from_the_gateway_only(database_url: str) -> None:
    with served_gateway(database_url, graphiql=True) as url:
        page = httpx.get(url + "/graphql", headers={"Accept": "text/html"})
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "connect-src 'self'" in policy
        assert "http" not in page.text.split("</head>")[0].replace("http-equiv", "")
        for name in GRAPHIQL_ASSETS:
            link = page.text.split(f"/assets/{name}?v=", 1)[1].split('"', 1)[0]
            asset = httpx.get(f"{url}/assets/{name}?v={link}", headers={"Accept-Encoding": "gzip"})
            assert asset.status_code == 200, name
            assert asset.headers["content-encoding"] == "gzip"
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            stale = httpx.get(f"{url}/assets/{name}?v=0")
            assert stale.headers["cache-control"] == "no-cache"
            assert stale.content == asset.content
        assert httpx.get(url + "/assets/package.json").status_code == 404
        assert httpx.get(url + "/assets/..%2Fpackage.json").status_code == 404
