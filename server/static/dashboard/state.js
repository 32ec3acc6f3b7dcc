// The view state and the URL: every choice (range, filters, chart, table, sort, page) lives in the
// address, so a view can be shared as a link. Presets are kept by name and turned into UTC days here.
"use strict";
UG.state = (function () {
  var DEFAULTS = {
    range: "30d", from: "", to: "", users: [], keys: [], models: [], providers: [], teams: [], tag: "",
    metric: "spend", granularity: "DAY", stack: "none", table: "user", sort: "SPEND", direction: "DESC",
    after: "", anomalies: "USER", movers: "USER",
  };
  var LISTS = { users: "user", keys: "key", models: "model", providers: "provider", teams: "team" };
  var SCALARS = {
    range: ["7d", "30d", "90d", "mtd", "lastmonth", "custom"],
    metric: ["spend", "requests"],
    granularity: ["DAY", "WEEK", "MONTH"],
    stack: ["none", "model", "provider"],
    table: ["user", "model", "provider", "key", "team", "tag", "modelGroup", "endpoint", "mcp"],
    sort: ["SPEND", "REQUESTS", "TOTAL_TOKENS", "FAILED_REQUESTS"],
    direction: ["ASC", "DESC"],
    anomalies: ["USER", "API_KEY", "MODEL", "TEAM"],
    movers: ["USER", "API_KEY", "MODEL", "PROVIDER", "TEAM"],
  };
  var ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

  function iso(date) {
    return date.toISOString().slice(0, 10);
  }

  function todayUtc() {
    return iso(new Date());
  }

  function addDays(day, days) {
    var date = new Date(day + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + days);
    return iso(date);
  }

  function parse(search) {
    var params = new URLSearchParams(search);
    var view = Object.assign({}, DEFAULTS);
    Object.keys(SCALARS).forEach(function (name) {
      var value = params.get(name);
      if (value !== null && SCALARS[name].indexOf(value) >= 0) view[name] = value;
    });
    Object.keys(LISTS).forEach(function (name) {
      view[name] = params.getAll(LISTS[name]).filter(Boolean);
    });
    ["from", "to"].forEach(function (name) {
      var value = params.get(name) || "";
      view[name] = ISO_DAY.test(value) ? value : "";
    });
    if (view.range === "custom" && !(view.from && view.to && view.from <= view.to)) view.range = DEFAULTS.range;
    if (view.range !== "custom") { view.from = ""; view.to = ""; }
    view.after = params.get("after") || "";
    view.tag = params.get("tag") || ""; // one tag: the API refuses several
    return view;
  }

  function search(view) {
    var params = new URLSearchParams();
    Object.keys(SCALARS).forEach(function (name) {
      if (view[name] !== DEFAULTS[name]) params.set(name, view[name]);
    });
    if (view.range === "custom") { params.set("from", view.from); params.set("to", view.to); }
    Object.keys(LISTS).forEach(function (name) {
      view[name].forEach(function (value) { params.append(LISTS[name], value); });
    });
    if (view.tag) params.set("tag", view.tag);
    if (view.after) params.set("after", view.after);
    var text = params.toString();
    return text ? "?" + text : "";
  }

  // The inclusive UTC days a view covers.
  function days(view, today) {
    today = today || todayUtc();
    var first = today.slice(0, 8) + "01";
    switch (view.range) {
      case "7d": return { from: addDays(today, -6), to: today };
      case "90d": return { from: addDays(today, -89), to: today };
      case "mtd": return { from: first, to: today };
      case "lastmonth": return { from: addDays(first, -1).slice(0, 8) + "01", to: addDays(first, -1) };
      case "custom": return { from: view.from, to: view.to };
      default: return { from: addDays(today, -29), to: today };
    }
  }

  function length(span) {
    return Math.round((Date.parse(span.to) - Date.parse(span.from)) / 86400000) + 1;
  }

  // A new view from `view` with `changes`; any change but the page itself starts again at page one.
  function change(view, changes) {
    var next = Object.assign({}, view, changes);
    if (!("after" in changes)) next.after = "";
    return next;
  }

  return { DEFAULTS: DEFAULTS, parse: parse, search: search, days: days, length: length, change: change, addDays: addDays };
})();
