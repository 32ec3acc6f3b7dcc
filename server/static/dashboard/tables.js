// The breakdown table (by user, model, provider, key, team, tag, model group, endpoint or MCP tool):
// sortable columns, one page at a time, and a click on a row's name filters the whole view on it (where
// the filter has such a condition: model groups, endpoints and MCP tools have none).
"use strict";
UG.tables = (function () {
  var f = UG.format;
  var CONNECTION = {
    user: "byUser", model: "byModel", provider: "byProvider", key: "byApiKey", team: "byTeam", tag: "byTag",
    modelGroup: "byModelGroup", endpoint: "byEndpoint", mcp: "byMcpServer",
  };
  var FILTER = { user: "users", model: "models", provider: "providers", key: "keys", team: "teams", tag: "tag" };
  var TITLES = {
    user: "User", model: "Model", provider: "Provider", key: "Key", team: "Team", tag: "Tag",
    modelGroup: "Model group", endpoint: "Endpoint", mcp: "MCP tool",
  };
  // What a table's numbers add up to, where that is not simply the totals.
  var NOTES = {
    tag: "A request with several tags counts once in each of them, so this column need not add up to the totals.",
    endpoint: "Only requests with a recorded endpoint are counted, so this column may add up to less than the totals.",
    mcp: "Only requests through an MCP tool are counted, so this column usually adds up to much less than the totals.",
  };
  var LAST_ACTIVE = ["user", "key", "team", "modelGroup", "endpoint", "mcp"];

  function models(list) {
    var shown = list.slice(0, 3).join(", ");
    return list.length > 3 ? shown + " +" + (list.length - 3) : shown;
  }

  function identity(kind, node) {
    if (kind === "user") return { id: node.userId, name: node.user && node.user.username ? node.user.username : node.userId, hint: node.user ? node.user.department || node.user.email || "" : "not in the directory" };
    if (kind === "model") return { id: node.model || "", name: node.model || "(no model)", hint: node.providers.join(", ") };
    if (kind === "provider") return { id: node.provider || "", name: node.provider || "(no provider)", hint: node.models.length + (node.models.length === 1 ? " model" : " models") };
    if (kind !== "key" && kind !== "user" && kind !== "model" && kind !== "provider") return others(kind, node);
    var key = node.apiKey;
    var name = key ? key.keyAlias || key.name || node.tokenHashPrefix : node.apiKeyId || node.tokenHashPrefix;
    if (name.length > 28) name = name.slice(0, 14) + "…" + name.slice(-6); // a bare token hash
    var owner = node.user ? node.user.username || node.user.id : key ? "no owner" : "not in the directory";
    return { id: node.apiKeyId || "", name: name, hint: owner + (key && key.revoked ? " · revoked" : "") };
  }

  function others(kind, node) {
    if (kind === "team") {
      if (node.teamId === "no-team") return { id: node.teamId, name: "No team", hint: "keys without a team" };
      var hint = node.deleted ? "deleted in LiteLLM" : node.teamAlias ? "" : "not in LiteLLM's team list";
      return { id: node.teamId, name: node.teamAlias || node.teamId, hint: hint };
    }
    if (kind === "tag") return { id: node.tag, name: node.tag, hint: "" };
    if (kind === "modelGroup") return { id: node.modelGroup, name: node.modelGroup, hint: models(node.models) };
    if (kind === "endpoint") return { id: node.endpoint, name: node.endpoint, hint: models(node.models) };
    return { id: node.mcpTool, name: node.mcpTool, hint: models(node.models) };
  }

  var COLUMNS = [
    { label: "Spend", sort: "SPEND", cell: function (n) { return f.currency(n.metrics.spend); } },
    { label: "Share", cell: function (n) { return f.percent(n.share); }, bar: true },
    { label: "Requests", sort: "REQUESTS", cell: function (n) { return f.integer(n.metrics.requests); } },
    { label: "Success", cell: function (n) { return f.percent(n.metrics.successRate); } },
    { label: "Tokens", sort: "TOTAL_TOKENS", cell: function (n) { return f.compact(n.metrics.totalTokens); } },
    { label: "Latency", cell: function (n) { return f.latency(n.metrics.averageLatencyMs); } },
  ];

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chosenIn(view, filter, id) {
    if (!filter) return false;
    return filter === "tag" ? view.tag === id : view[filter].indexOf(id) >= 0;
  }

  // The breakdown the API refused under this filter (or could not answer): its message instead of rows.
  function refused(container, view, message) {
    container.textContent = "";
    var box = element("div", "refused");
    box.setAttribute("role", "status");
    box.setAttribute("data-table", view.table);
    box.appendChild(element("p", "refused-title", "No " + TITLES[view.table].toLowerCase() + " breakdown for this filter"));
    box.appendChild(element("p", "refused-reason", message));
    container.appendChild(box);
  }

  // `handlers`: sort(metric, direction), filter(kind, id).
  function draw(container, usage, view, handlers) {
    var kind = view.table;
    var connection = usage[CONNECTION[kind]];
    var filter = FILTER[kind];
    container.textContent = "";
    if (NOTES[kind]) {
      var note = element("p", "table-note muted small", NOTES[kind]);
      note.id = "table-note";
      container.appendChild(note);
    }
    var table = element("table", "data");
    table.setAttribute("data-table", kind);
    var caption = element("caption", "sr", "Usage by " + TITLES[kind].toLowerCase() + ", page by page" + (filter ? "; activate a name to filter on it" : ""));
    table.appendChild(caption);
    var head = element("thead");
    var row = element("tr");
    var first = element("th", "name", TITLES[kind]);
    first.scope = "col";
    row.appendChild(first);
    COLUMNS.forEach(function (column) {
      var th = element("th", "num");
      th.scope = "col";
      if (column.sort) {
        var active = view.sort === column.sort;
        th.setAttribute("aria-sort", active ? (view.direction === "ASC" ? "ascending" : "descending") : "none");
        var button = element("button", "sort" + (active ? " active" : ""));
        button.type = "button";
        button.setAttribute("aria-label", "Sort by " + column.label.toLowerCase() + (active && view.direction === "DESC" ? ", ascending" : ", descending"));
        button.appendChild(element("span", "", column.label));
        var arrow = element("span", "arrow", active ? (view.direction === "ASC" ? "↑" : "↓") : "↕");
        arrow.setAttribute("aria-hidden", "true");
        button.appendChild(arrow);
        button.addEventListener("click", function () {
          handlers.sort(column.sort, active && view.direction === "DESC" ? "ASC" : "DESC");
        });
        th.appendChild(button);
      } else {
        th.textContent = column.label;
      }
      row.appendChild(th);
    });
    if (LAST_ACTIVE.indexOf(kind) >= 0) {
      var last = element("th", "num", "Last active");
      last.scope = "col";
      row.appendChild(last);
    }
    head.appendChild(row);
    table.appendChild(head);
    var body = element("tbody");
    // The share bars are drawn against the page's largest share, so that small shares stay visible.
    var widest = Math.max.apply(null, connection.nodes.map(function (node) { return node.share; }).concat([0.0001]));
    connection.nodes.forEach(function (node) {
      var who = identity(kind, node);
      var tr = element("tr");
      tr.setAttribute("data-id", who.id);
      var th = element("th", "name");
      th.scope = "row";
      if (filter) {
        var chosen = chosenIn(view, filter, who.id);
        var link = element("button", "row-link", who.name);
        link.type = "button";
        link.title = (chosen ? "Already filtered on " : "Filter on ") + (kind === "key" ? who.id : who.name);
        link.disabled = chosen || !who.id;
        link.addEventListener("click", function () { handlers.filter(filter, who.id); });
        th.appendChild(link);
      } else {
        th.appendChild(element("span", "row-name", who.name));
      }
      if (who.hint) th.appendChild(element("span", "hint", who.hint));
      tr.appendChild(th);
      COLUMNS.forEach(function (column) {
        var td = element("td", "num");
        if (column.bar) {
          var bar = element("span", "share-bar");
          var fill = element("span", "share-fill");
          fill.style.width = Math.max(0, Math.min(100, (node.share / widest) * 100)).toFixed(1) + "%";
          bar.setAttribute("aria-hidden", "true");
          bar.appendChild(fill);
          td.appendChild(bar);
          td.appendChild(element("span", "share-text", column.cell(node)));
        } else {
          td.textContent = column.cell(node);
        }
        if (column.sort === "SPEND") td.setAttribute("data-value", node.metrics.spendExact);
        tr.appendChild(td);
      });
      if (LAST_ACTIVE.indexOf(kind) >= 0) tr.appendChild(element("td", "num", f.day(node.lastActiveDate)));
      body.appendChild(tr);
    });
    if (!connection.nodes.length) {
      var empty = element("tr");
      var cell = element("td", "empty", "Nothing in this range and filter.");
      cell.colSpan = COLUMNS.length + 2;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    table.appendChild(body);
    var wrap = element("div", "scroll");
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Usage by " + TITLES[kind].toLowerCase());
    wrap.appendChild(table);
    container.appendChild(wrap);
    return connection;
  }

  return { draw: draw, refused: refused, CONNECTION: CONNECTION };
})();
