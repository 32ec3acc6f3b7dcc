// The GraphQL documents the page sends (fixed strings: the gateway prepares and caches each once) and
// the one function that sends them. A view is one request (`@include` variables pick what is drawn), plus
// one for a breakdown the API may refuse under the view's filter (teams, tags, model groups, endpoints,
// MCP tools): such a refusal refuses the whole operation, so it stays out of the view's request.
"use strict";
UG.api = (function () {
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var ROW = "spend spendExact requests successRate totalTokens averageLatencyMs";
  // The chart draws one metric: spend, or requests.
  var POINT = "metrics { spend @include(if: $bySpend) requests @skip(if: $bySpend) }";
  var SERIES = "timeSeries(granularity: $granularity) { " + POINT + " }";
  var PAGE = "(first: $first, after: $after, orderBy: $order)";

  var OPTIONS_FRAGMENT = [
    "fragment Options on FilterOptions {",
    "  users @include(if: $everyone) { id username email }",
    "  apiKeys { id name keyAlias user { id } }",
    "  models",
    "  providers",
    "  teams { id alias deleted }",
    "}",
  ].join("\n");

  var DASHBOARD = [
    "query Dashboard($filter: UsageFilter!, $from: Date!, $to: Date!, $granularity: Granularity!, $bySpend: Boolean!,",
    "  $options: Boolean!, $everyone: Boolean!, $stackModel: Boolean!, $stackProvider: Boolean!,",
    "  $tableUser: Boolean!, $tableModel: Boolean!, $tableProvider: Boolean!, $tableKey: Boolean!,",
    "  $first: Int!, $after: String, $order: UsageOrder, $optionTeams: [ID!]) {",
    "  viewer { id roles }",
    "  filterOptions(from: $from, to: $to, teamIds: $optionTeams) @include(if: $options) { ...Options }",
    "  usage(filter: $filter) {",
    "    from",
    "    to",
    "    totals { ...Card }",
    "    previousPeriod { ...Card }",
    "    timeSeries(granularity: $granularity) { date from to " + POINT + " }",
    "    stackModels: byModel(first: 8) @include(if: $stackModel) { totalCount nodes { model " + SERIES + " } }",
    "    stackProviders: byProvider(first: 8) @include(if: $stackProvider) { totalCount nodes { provider " + SERIES + " } }",
    "    byUser" + PAGE + " @include(if: $tableUser) {",
    "      totalCount pageInfo { hasNextPage endCursor }",
    "      nodes { userId share lastActiveDate user { username email department } metrics { " + ROW + " } }",
    "    }",
    "    byModel" + PAGE + " @include(if: $tableModel) {",
    "      totalCount pageInfo { hasNextPage endCursor }",
    "      nodes { model providers share metrics { " + ROW + " } }",
    "    }",
    "    byProvider" + PAGE + " @include(if: $tableProvider) {",
    "      totalCount pageInfo { hasNextPage endCursor }",
    "      nodes { provider models share metrics { " + ROW + " } }",
    "    }",
    "    byApiKey" + PAGE + " @include(if: $tableKey) {",
    "      totalCount pageInfo { hasNextPage endCursor }",
    "      nodes { apiKeyId tokenHashPrefix share lastActiveDate apiKey { name keyAlias revoked } user { id username } metrics { " + ROW + " } }",
    "    }",
    "    freshness { complete openDays missingDays unverifiedDays asOf }",
    "  }",
    "}",
    "fragment Card on UsageMetrics {",
    "  spend spendExact requests failedRequests successRate totalTokens",
    "  averageLatencyMs activeUsers activeApiKeys",
    "}",
    OPTIONS_FRAGMENT,
  ].join("\n");

  var SIDE = "totalCount pageInfo { hasNextPage endCursor } ";
  var BREAKDOWN = [
    "query Breakdown($filter: UsageFilter!, $first: Int!, $after: String, $order: UsageOrder,",
    "  $tableTeam: Boolean!, $tableTag: Boolean!, $tableModelGroup: Boolean!, $tableEndpoint: Boolean!, $tableMcp: Boolean!) {",
    "  usage(filter: $filter) {",
    "    byTeam" + PAGE + " @include(if: $tableTeam) {",
    "      " + SIDE + "nodes { teamId teamAlias deleted share lastActiveDate metrics { " + ROW + " } }",
    "    }",
    "    byTag" + PAGE + " @include(if: $tableTag) { " + SIDE + "nodes { tag share metrics { " + ROW + " } } }",
    "    byModelGroup" + PAGE + " @include(if: $tableModelGroup) {",
    "      " + SIDE + "nodes { modelGroup models share lastActiveDate metrics { " + ROW + " } }",
    "    }",
    "    byEndpoint" + PAGE + " @include(if: $tableEndpoint) {",
    "      " + SIDE + "nodes { endpoint models share lastActiveDate metrics { " + ROW + " } }",
    "    }",
    "    byMcpServer" + PAGE + " @include(if: $tableMcp) {",
    "      " + SIDE + "nodes { mcpTool models share lastActiveDate metrics { " + ROW + " } }",
    "    }",
    "  }",
    "}",
  ].join("\n");

  // Issue 17's insights, each in its own request after the view is drawn: a gateway without one of these
  // fields (or refusing it under the filter) refuses that request alone, and its section says so.
  var BUDGETS = [
    "query Budgets($filter: UsageFilter!, $first: Int!) {",
    "  usage(filter: $filter) {",
    "    budgets(first: $first) {",
    "      totalCount",
    "      nodes { entity id name limit limitExact duration periodFrom periodTo spend spendExact shareUsed dailyRate projectedRunOut status complete }",
    "    }",
    "    exceeded: budgets(first: 1, status: EXCEEDED) { totalCount }",
    "    atRisk: budgets(first: 1, status: AT_RISK) { totalCount }",
    "  }",
    "}",
  ].join("\n");
  var FORECAST_FIELDS = "spend spendLow spendHigh requests requestsLow requestsHigh";
  var FORECAST = [
    "query Forecast($filter: UsageFilter!) {",
    "  usage(filter: $filter) {",
    "    forecast(horizon: MONTH_END) {",
    "      horizon method inputFrom inputTo inputDays from to actualSpend " + FORECAST_FIELDS,
    "      points { date " + FORECAST_FIELDS + " }",
    "    }",
    "  }",
    "}",
  ].join("\n");
  var ANOMALIES = [
    "query Anomalies($filter: UsageFilter!, $dimension: AnomalyDimension!, $first: Int!) {",
    "  usage(filter: $filter) {",
    "    anomalies(dimension: $dimension, first: $first) {",
    "      totalCount skippedDays",
    "      nodes {",
    "        dimension id name date metric value baseline spread threshold size baselineDays",
    "        filter { from to userIds apiKeyIds models teamIds providers }",
    "      }",
    "    }",
    "  }",
    "}",
  ].join("\n");
  var MOVERS = [
    "query Movers($filter: UsageFilter!, $dimension: MoverDimension!, $first: Int!) {",
    "  usage(filter: $filter) {",
    "    movers(dimension: $dimension, first: $first, metric: SPEND) {",
    "      totalCount nodes { dimension id name current previous change changeRelative status }",
    "    }",
    "  }",
    "}",
  ].join("\n");

  var VIEWER = "query Viewer { viewer { id roles } }";
  var OPTIONS = [
    "query FilterOptions($from: Date!, $to: Date!, $everyone: Boolean!, $optionTeams: [ID!]) {",
    "  filterOptions(from: $from, to: $to, teamIds: $optionTeams) { ...Options }",
    "}",
    OPTIONS_FRAGMENT,
  ].join("\n");
  // Tags are read from LiteLLM's tag activity (slow the first time for a range): only for the tag picker.
  var TAGS = "query TagOptions($from: Date!, $to: Date!) { filterOptions(from: $from, to: $to) { tags } }";
  var REFRESH = "mutation RefreshToday { refreshToday { days refreshedAt changed } }";
  var EXPORT_FIELDS = "id status format rowCount byteSize downloadUrl error";
  var EXPORT = "mutation Export($filter: UsageFilter!, $format: ExportFormat!) { exportUsage(filter: $filter, format: $format) { " + EXPORT_FIELDS + " } }";
  var EXPORT_PROGRESS = "query ExportProgress($id: ID!) { export(id: $id) { " + EXPORT_FIELDS + " } }";

  // An answer: `data`, the errors' messages and codes, and the gateway's warnings.
  function send(token, query, variables) {
    return fetch(config.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify({ query: query, variables: variables || {} }),
      cache: "no-store",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        var errors = (body.errors || []).map(function (error) {
          return { message: error.message, code: (error.extensions || {}).code || "" };
        });
        if (!response.ok && errors.length === 0) {
          errors.push({ message: "The gateway answered " + response.status + ".", code: response.status === 401 ? "UNAUTHENTICATED" : "" });
        }
        return {
          status: response.status,
          data: body.data || null,
          errors: errors,
          warnings: ((body.extensions || {}).warnings || []).map(function (w) { return w.message || String(w); }),
        };
      });
    });
  }

  return {
    config: config,
    DASHBOARD: DASHBOARD,
    viewer: function (token) { return send(token, VIEWER); },
    filterOptions: function (token, variables) { return send(token, OPTIONS, variables); },
    dashboard: function (token, variables) { return send(token, DASHBOARD, variables); },
    breakdown: function (token, variables) { return send(token, BREAKDOWN, variables); },
    tags: function (token, variables) { return send(token, TAGS, variables); },
    budgets: function (token, variables) { return send(token, BUDGETS, variables); },
    forecast: function (token, variables) { return send(token, FORECAST, variables); },
    anomalies: function (token, variables) { return send(token, ANOMALIES, variables); },
    movers: function (token, variables) { return send(token, MOVERS, variables); },
    refreshToday: function (token) { return send(token, REFRESH); },
    exportUsage: function (token, filter, format) { return send(token, EXPORT, { filter: filter, format: format }); },
    exportProgress: function (token, id) { return send(token, EXPORT_PROGRESS, { id: id }); },
  };
})();
