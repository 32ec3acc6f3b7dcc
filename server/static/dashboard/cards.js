// The metric cards: each total with its change against the previous period of the same length.
// `data-value` holds the raw number the card shows (exact spend as the API's decimal text).
"use strict";
UG.cards = (function () {
  var f = UG.format;

  function relative(current, previous) {
    if (previous === null || previous === undefined || current === null || current === undefined) return null;
    if (Number(previous) === 0) return Number(current) === 0 ? { text: "no change", direction: 0 } : { text: "new", direction: 1 };
    var ratio = (Number(current) - Number(previous)) / Number(previous);
    if (Math.round(ratio * 1000) === 0) return { text: "no change", direction: 0 };
    return { text: f.percent(Math.abs(ratio)), direction: Math.sign(Math.round(ratio * 1000)) };
  }

  function pointsChange(current, previous) {
    if (previous === null || previous === undefined || current === null || current === undefined) return null;
    var diff = current - previous;
    return { text: f.points(Math.abs(diff)).replace(/^[+−-]/, ""), direction: Math.sign(Math.round(diff * 1000)) };
  }

  // `better`: which direction is good news (1 up, -1 down, 0 neither), for the colour only.
  function definitions(everyone) {
    return [
      { id: "spend", label: "Spend", value: function (m) { return m.spendExact; }, text: function (m) { return f.currency(m.spend); }, change: function (m, p) { return relative(m.spend, p.spend); }, better: 0 },
      { id: "requests", label: "Requests", value: function (m) { return m.requests; }, text: function (m) { return f.integer(m.requests); }, change: function (m, p) { return relative(m.requests, p.requests); }, better: 0, detail: function (m) { return f.integer(m.failedRequests) + " failed"; } },
      { id: "tokens", label: "Tokens", value: function (m) { return m.totalTokens; }, text: function (m) { return f.compact(m.totalTokens); }, change: function (m, p) { return relative(m.totalTokens, p.totalTokens); }, better: 0, detail: function (m) { return f.integer(m.totalTokens) + " in all"; } },
      { id: "success-rate", label: "Success rate", value: function (m) { return m.successRate; }, text: function (m) { return f.percent(m.successRate); }, change: function (m, p) { return pointsChange(m.successRate, p.successRate); }, better: 1 },
      { id: "latency", label: "Avg latency", value: function (m) { return m.averageLatencyMs; }, text: function (m) { return f.latency(m.averageLatencyMs); }, change: function (m, p) { return relative(m.averageLatencyMs, p.averageLatencyMs); }, better: -1 },
      everyone
        ? { id: "active-users", label: "Active users", value: function (m) { return m.activeUsers; }, text: function (m) { return f.integer(m.activeUsers); }, change: function (m, p) { return relative(m.activeUsers, p.activeUsers); }, better: 0, detail: function (m) { return f.integer(m.activeApiKeys) + " active keys"; } }
        : { id: "active-keys", label: "Active keys", value: function (m) { return m.activeApiKeys; }, text: function (m) { return f.integer(m.activeApiKeys); }, change: function (m, p) { return relative(m.activeApiKeys, p.activeApiKeys); }, better: 0 },
    ];
  }

  function draw(container, usage, everyone, days) {
    container.textContent = "";
    var against = "vs previous " + (days === 1 ? "day" : f.integer(days) + " days");
    definitions(everyone).forEach(function (card) {
      var totals = usage.totals;
      var node = document.createElement("article");
      node.className = "card";
      node.setAttribute("data-card", card.id);
      var title = document.createElement("h3");
      title.textContent = card.label;
      var value = document.createElement("p");
      value.className = "value";
      var raw = card.value(totals);
      value.setAttribute("data-value", raw === null || raw === undefined ? "" : String(raw));
      value.textContent = card.text(totals);
      node.appendChild(title);
      node.appendChild(value);
      var change = card.change(totals, usage.previousPeriod);
      var line = document.createElement("p");
      line.className = "change";
      if (change) {
        var arrow = change.direction > 0 ? "▲" : change.direction < 0 ? "▼" : "●";
        var mood = card.better === 0 || change.direction === 0 ? "neutral" : change.direction === card.better ? "good" : "bad";
        line.classList.add(mood);
        var mark = document.createElement("span");
        mark.setAttribute("aria-hidden", "true");
        mark.textContent = arrow + " ";
        line.appendChild(mark);
        var words = change.direction > 0 ? "up " : change.direction < 0 ? "down " : "";
        var text = document.createElement("span");
        text.textContent = (change.text === "new" || change.text === "no change" ? change.text : words + change.text) + " " + against;
        line.appendChild(text);
      } else {
        line.textContent = "no previous figure";
      }
      node.appendChild(line);
      if (card.detail) {
        var detail = document.createElement("p");
        detail.className = "detail";
        detail.textContent = card.detail(totals);
        node.appendChild(detail);
      }
      container.appendChild(node);
    });
    container.setAttribute("aria-busy", "false");
  }

  return { draw: draw };
})();
