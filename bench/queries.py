"""The GraphQL documents the benchmarks send, and their variables."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

_NODE = "metrics { spend requests totalTokens } share"

# The dashboard of DESIGN §10: all six `usage` fields, 50 nodes each, a daily series nested in every user.
DASHBOARD = f"""
query Dashboard($from: Date!, $to: Date!) {{
  usage(filter: {{from: $from, to: $to}}) {{
    totals {{ spend requests successRate totalTokens averageLatencyMs
              activeUsers activeApiKeys activeModels }}
    previousPeriod {{ spend requests totalTokens activeUsers }}
    timeSeries(granularity: DAY) {{ date metrics {{ spend requests totalTokens }} }}
    byUser(first: 50) {{
      totalCount
      nodes {{ userId user {{ username }} {_NODE}
               timeSeries(granularity: DAY) {{ date metrics {{ spend requests }} }} }}
    }}
    byModel(first: 50) {{ totalCount nodes {{ model providers {_NODE} }} }}
    byProvider(first: 50) {{ totalCount nodes {{ provider models {_NODE} }} }}
    byApiKey(first: 50) {{
      totalCount nodes {{ apiKeyId apiKey {{ keyAlias }} user {{ username }} {_NODE} }}
    }}
    freshness {{ complete days closedDays openDays missingDays }}
  }}
}}"""

# Nodes within nodes (tests/test_api_batching.py): the statements it costs must not grow with `$n`.
NESTED = """
query Nested($f: UsageFilter!, $n: Int!) {
  usage(filter: $f) {
    totals { spend }
    byUser(first: $n) {
      nodes {
        userId share user { id username }
        timeSeries { date metrics { spend requests } }
        models(first: 3) {
          model providers timeSeries { date metrics { spend } }
          topUsers { userId user { id } models { model } }
        }
        apiKeys { apiKeyId apiKey { id user { id } } user { id } timeSeries(granularity: WEEK) { date } }
      }
    }
    byModel(first: $n) {
      nodes { model topUsers(first: 3) { userId timeSeries { date } apiKeys { apiKeyId } } }
    }
    byApiKey(first: $n) {
      nodes { apiKeyId user { id } apiKey { id } timeSeries(granularity: MONTH) { date } }
    }
  }
}
"""


def last_days(last_day: date, days: int) -> tuple[date, date]:
    return last_day - timedelta(days=days - 1), last_day


def dashboard_variables(first: date, last: date) -> dict[str, Any]:
    return {"from": first.isoformat(), "to": last.isoformat()}


def nested_variables(first: date, last: date, nodes: int) -> dict[str, Any]:
    return {"f": dashboard_variables(first, last), "n": nodes}
