// The breakdown table (by user, model, provider or key): sortable columns, one page at a time, and a
// click on a row's name filters the whole view on it.
"use strict";
UG.tables = (function () {
  var f = UG.format;
  var CONNECTION = { user: "byUser", model: "byModel", provider: "byProvider", key: "byApiKey" };
  var FILTER = { user: "users", model: "models", provider: "providers", key: "keys" };
  var TITLES = { user: "User", model: "Model", provider: "Provider", key: "Key" };

  function identity(kind, node) {
    if (kind === "user") return { id: node.userId, name: node.user && node.user.username ? node.user.username : node.userId, hint: node.user ? node.user.department || node.user.email || "" : "not in the directory" };
    if (kind === "model") return { id: node.model || "", name: node.model || "(no model)", hint: node.providers.join(", ") };
    if (kind === "provider") return { id: node.provider || "", name: node.provider || "(no provider)", hint: node.models.length + (node.models.length === 1 ? " model" : " models") };
    var key = node.apiKey;
    var name = key ? key.keyAlias || key.name || node.tokenHashPrefix : node.apiKeyId || node.tokenHashPrefix;
    if (name.length > 28) name = name.slice(0, 14) + "…" + name.slice(-6); // a bare token hash
    var owner = node.user ? node.user.username || node.user.id : key ? "no owner" : "not in the directory";
    return { id: node.apiKeyId || "", name: name, hint: owner + (key && key.revoked ? " · revoked" : "") };
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

  // `handlers`: sort(metric, direction), filter(kind, id).
  function draw(container, usage, view, handlers) {
    var kind = view.table;
    var connection = usage[CONNECTION[kind]];
    container.textContent = "";
    var table = element("table", "data");
    table.setAttribute("data-table", kind);
    var caption = element("caption", "sr", "Usage by " + TITLES[kind].toLowerCase() + ", page by page; activate a name to filter on it");
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
    if (kind === "user" || kind === "key") {
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
      var chosen = view[FILTER[kind]].indexOf(who.id) >= 0;
      var link = element("button", "row-link", who.name);
      link.type = "button";
      link.title = (chosen ? "Already filtered on " : "Filter on ") + (kind === "key" ? who.id : who.name);
      link.disabled = chosen || !who.id;
      link.addEventListener("click", function () { handlers.filter(FILTER[kind], who.id); });
      th.appendChild(link);
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
      if (kind === "user" || kind === "key") tr.appendChild(element("td", "num", f.day(node.lastActiveDate)));
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

  return { draw: draw, CONNECTION: CONNECTION };
})();
