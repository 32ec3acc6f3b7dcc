"""The dashboard's page weight and time to first view, cold and warm, in headless Chromium.

``python -m bench.dashboard_page`` starts ``usage-gateway demo`` (or uses ``--url`` and ``--token`` of one
already running), waits until its cache is warm, then opens ``/`` signed in as the admin:

- cold: a fresh browser profile (empty HTTP cache), the first visit;
- warm: the same profile again (assets from the browser's cache, the gateway's answer cache warm).

Time to first view is the page's own ``performance.mark('first-view')`` (set when the cards, chart and
table are first drawn), counted from navigation start. Weight is what the network carried for it: the
``transferSize`` of the document and of every resource started before the first view, GraphQL answers
included (the insight sections, asked for after the first view, are not). Each visit waits for the
network to go quiet before the next, as a person would look at the page.

``--compare-url`` and ``--compare-token`` name a second gateway (say, a demo of the previous commit):
both are measured in the same run, alternately (``--rounds`` times each), and the ratio of their warm
medians is printed. ``--view '?table=team'`` opens another view than the default one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from tests.browser import launched_chromium
from tests.test_demo import START_TIMEOUT, DemoProcess

WARM_TIMEOUT = 180
VIEW_TIMEOUT_MS = 60_000
TOKEN_KEY = "usage-gateway:token"  # noqa: S105 (the storage key, not a token)
ROLES_KEY = "usage-gateway:roles"
VISIT = """() => {
  const mark = performance.getEntriesByName("first-view")[0];
  // What the first view needed: requests started before it (the insight sections start after).
  const entries = [
    ...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource"),
  ].filter(e => !mark || e.startTime <= mark.startTime);
  return {
    firstViewMs: mark ? mark.startTime : null,
    transferred: entries.reduce((sum, e) => sum + e.transferSize, 0),
    decoded: entries.reduce((sum, e) => sum + e.decodedBodySize, 0),
    requests: entries.length,
    fromNetwork: entries.filter(e => e.transferSize > 0).length,
  };
}"""


@dataclass(frozen=True)
class Visit:
    first_view_ms: float
    transferred: int
    decoded: int
    requests: int
    from_network: int

    @classmethod
    def of(cls, figures: dict[str, Any]) -> Visit:
        return cls(
            figures["firstViewMs"],
            figures["transferred"],
            figures["decoded"],
            figures["requests"],
            figures["fromNetwork"],
        )

    def line(self, label: str) -> str:
        return (
            f"{label:<6} first view {self.first_view_ms:5.0f} ms,"
            f" {self.transferred / 1000:6.1f} kB transferred"
            f" ({self.decoded / 1000:.1f} kB decoded; {self.requests} requests,"
            f" {self.from_network} over the network)"
        )


def measure(
    browser: Browser, base: str, token: str, warm_visits: int, view: str = ""
) -> tuple[Visit, list[Visit]]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    # Signed in before the page's scripts run, as after an earlier sign-in in this browser.
    context.add_init_script(
        f"localStorage.setItem({TOKEN_KEY!r}, {token!r}); localStorage.setItem({ROLES_KEY!r}, '[\"ADMIN\"]');"
    )
    page = context.new_page()
    visits = []
    for _ in range(1 + warm_visits):
        page.goto(base + "/" + view)
        page.wait_for_function(
            "() => performance.getEntriesByName('first-view').length > 0", timeout=VIEW_TIMEOUT_MS
        )
        visits.append(Visit.of(page.evaluate(VISIT)))
        # What the page asks for after its first view (the insight sections) ends before the next visit,
        # as it would while a person looks at the page, rather than competing with that visit's view.
        page.wait_for_load_state("networkidle", timeout=VIEW_TIMEOUT_MS)
    context.close()
    return visits[0], visits[1:]


def report(cold: Visit, warm: list[Visit]) -> None:
    print(cold.line("cold"))
    for visit in warm:
        print(visit.line("warm"))
    median = statistics.median(visit.first_view_ms for visit in warm)
    weight = statistics.median(visit.transferred for visit in warm)
    print(f"warm median: first view {median:.0f} ms, {weight / 1000:.1f} kB transferred")


def compare(browser: Browser, args: argparse.Namespace) -> None:
    """This gateway and ``--compare-url`` in turns; the ratio of their medians (this one / the other)."""
    targets = {"this": (args.url, args.token), "other": (args.compare_url, args.compare_token)}
    visits: dict[str, list[Visit]] = {"this": [], "other": []}
    colds: dict[str, list[Visit]] = {"this": [], "other": []}
    for _ in range(args.rounds):
        for name, (url, token) in targets.items():
            cold, warm = measure(browser, url.rstrip("/"), token, args.warm_visits, args.view)
            colds[name].append(cold)
            visits[name] += warm
    medians = {}
    for name in targets:
        print(f"{name} ({targets[name][0]}):")
        for cold in colds[name]:
            print("  " + cold.line("cold"))
        first_view = statistics.median(visit.first_view_ms for visit in visits[name])
        weight = statistics.median(visit.transferred for visit in visits[name])
        cold_median = statistics.median(visit.first_view_ms for visit in colds[name])
        medians[name] = (first_view, cold_median)
        print(
            f"  warm median of {len(visits[name])}: first view {first_view:.0f} ms, {weight / 1000:.1f} kB"
            f" transferred; cold median {cold_median:.0f} ms"
        )
    print(
        f"ratio this/other: warm {medians['this'][0] / medians['other'][0]:.2f},"
        f" cold {medians['this'][1] / medians['other'][1]:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    summary = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_page", description=summary)
    parser.add_argument("--url", help="base URL of a running demo (default: start one)")
    parser.add_argument("--token", help="an admin token for --url")
    parser.add_argument("--warm-visits", type=int, default=5)
    parser.add_argument("--view", default="", help="the address's query, e.g. '?table=team' (default: none)")
    parser.add_argument("--compare-url", help="a second running gateway, measured alternately with --url")
    parser.add_argument("--compare-token", help="an admin token for --compare-url")
    parser.add_argument("--rounds", type=int, default=3, help="turns of each gateway with --compare-url")
    args = parser.parse_args(argv)
    if (args.url is None) != (args.token is None):
        parser.error("--url and --token go together")
    if (args.compare_url is None) != (args.compare_token is None):
        parser.error("--compare-url and --compare-token go together")
    if args.compare_url is not None and args.url is None:
        parser.error("--compare-url needs --url and --token")
    with launched_chromium() as browser:
        if args.compare_url is not None:
            compare(browser, args)
            return
        if args.url is not None:
            report(*measure(browser, args.url.rstrip("/"), args.token, args.warm_visits, args.view))
            return
        with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as cwd:
            demo = DemoProcess(Path(cwd))
            try:
                base = demo.wait_for(r"^Dashboard: (http://\S+)/$", START_TIMEOUT).group(1)
                token = demo.wait_for(r"^Admin token: (\S+)$", 5).group(1)
                demo.wait_for(r"^Cache warm: ", WARM_TIMEOUT)
                print(f"demo at {base}, cache warm")
                report(*measure(browser, base, token, args.warm_visits, args.view))
            finally:
                demo.close()


if __name__ == "__main__":
    main()
