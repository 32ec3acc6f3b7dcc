"""The example queries the demo preloads in GraphiQL (and the README shows), against DESIGN §5.

They are named operations of one document, so GraphiQL offers each one from its run button; they share
the variables of :func:`example_variables`.
"""

from __future__ import annotations

from datetime import date, timedelta

DASHBOARD = """\
# The admin dashboard: totals against the previous period, a daily series, the top five of each
# breakdown and whether every day of the range is in.
query Dashboard($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) {
    totals { ...Numbers }
    previousPeriod { ...Numbers }
    timeSeries(granularity: DAY) { date metrics { spend requests totalTokens } }
    byUser(first: 5) {
      totalCount
      nodes { userId user { username department } share metrics { spend requests } }
    }
    byModel(first: 5) { nodes { model providers share metrics { spend totalTokens } } }
    byProvider(first: 5) { nodes { provider models share metrics { spend requests } } }
    byApiKey(first: 5) {
      nodes { apiKeyId tokenHashPrefix apiKey { keyAlias revoked } user { username } metrics { spend } }
    }
    freshness { complete days closedDays openDays missingDays unverifiedDays asOf unattributedSpend }
  }
}

fragment Numbers on UsageMetrics {
  spend requests successRate totalTokens cacheReadInputTokens averageLatencyMs
  activeUsers activeApiKeys activeModels
}
"""

TOP_USERS = """\
# Who spends most, on which models and with which keys.
query TopUsersWithModels($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) {
    byUser(first: 10, orderBy: {metric: SPEND, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        userId
        user { username email department }
        share
        lastActiveDate
        metrics { spend requests failedRequests totalTokens }
        models(first: 3) { model providers share metrics { spend requests } }
        apiKeys(first: 3) { apiKeyId apiKey { keyAlias } metrics { spend } }
      }
    }
  }
}
"""

USER_DAILY = """\
# One user's day by day usage (a user token may only ask for its own id).
query UserDailySeries($from: Date!, $to: Date!, $userId: ID!) {
  usage(filter: {from: $from, to: $to, userIds: [$userId]}) {
    totals { spend requests totalTokens }
    timeSeries(granularity: DAY) { date metrics { spend requests promptTokens completionTokens } }
    byModel(first: 10) { nodes { model metrics { spend } } }
  }
}
"""

BUDGETS = """\
# Who will run out of budget this month, and when: LiteLLM budgets as of `to`, most used first; `status`
# says which are EXCEEDED or AT_RISK (projected to run out by `periodTo`, on `projectedRunOut`).
query BudgetsRunningOut($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) {
    budgets(first: 20) {
      totalCount
      nodes {
        entity id name limit duration periodFrom periodTo
        spend shareUsed dailyRate projectedRunOut status complete
      }
    }
  }
}
"""

EXAMPLES = "\n".join((DASHBOARD, TOP_USERS, USER_DAILY, BUDGETS))


def example_variables(today: date, user_id: str, *, days: int = 30) -> dict[str, str]:
    """The last ``days`` days up to ``today`` and one user, for every example."""
    return {
        "from": (today - timedelta(days=days - 1)).isoformat(),
        "to": today.isoformat(),
        "userId": user_id,
    }
