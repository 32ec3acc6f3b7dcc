// The page: sign-in, the view in the URL, one GraphQL request per view change (two for a breakdown the API
// may refuse under the filter), and drawing the answers.
"use strict";
(function () {
  var f = UG.format;
  var api = UG.api;
  var PAGE_SIZE = 20;
  var TOKEN = "usage-gateway:token";
  var ROLES = "usage-gateway:roles";
  var READERS_OF_EVERYONE = ["ADMIN", "ADMIN_READONLY"];
  // Tables asked for in their own request: the API may refuse them under a filter (or read tag days for
  // them), and a refusal must leave the rest of the view standing.
  var SEPARATE = ["team", "tag", "modelGroup", "endpoint", "mcp"];

  var $ = function (id) { return document.getElementById(id); };
  var token = null;
  var roles = [];
  var view = null;
  // filterOptions of the range and teams `optionsFor`: asked for only once a picker opens or a filter needs
  // its labels, then again only when the range or the chosen teams change (the keys cascade from them).
  var options = null;
  var optionsFor = "";
  var optionsAsked = "";
  // The range's tags (LiteLLM's tag activity): asked for only when the tag picker opens.
  var tags = null;
  var tagsFor = "";
  var tagsAsked = "";
  var cursors = []; // the `after` of each earlier page, for Previous
  var sequence = 0;
  var draws = 0;
  var shown = null; // the last drawn usage and its filter, for redrawing the chart with a forecast

  function stored(name) {
    try { return window.localStorage.getItem(name); } catch (error) { return null; }
  }

  function store(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(name);
      else window.localStorage.setItem(name, value);
    } catch (error) { /* storage off: the token lasts as long as the page */ }
  }

  function everyone() {
    return roles.some(function (role) { return READERS_OF_EVERYONE.indexOf(role) >= 0; });
  }

  function showSignIn(message) {
    $("main").hidden = true;
    $("who").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("token").focus();
  }

  function signOut(message) {
    token = null;
    roles = [];
    store(TOKEN, null);
    store(ROLES, null);
    options = null;
    optionsFor = "";
    tags = null;
    tagsFor = "";
    shown = null;
    UG.insights.forget();
    showSignIn(message);
  }

  function signIn(candidate) {
    candidate = candidate.trim().replace(/^Bearer\s+/i, "");
    if (!candidate) return Promise.resolve(showSignIn("Paste a token first."));
    return api.viewer(candidate).then(function (answer) {
      if (answer.errors.length || !answer.data) {
        var error = answer.errors[0] || { message: "No answer." };
        showSignIn(error.code === "UNAUTHENTICATED" ? "The gateway refused this token: " + error.message : error.message);
        return;
      }
      token = candidate;
      roles = answer.data.viewer.roles;
      store(TOKEN, token);
      store(ROLES, JSON.stringify(roles));
      start();
    }, function () {
      showSignIn("The gateway could not be reached.");
    });
  }

  function start() {
    $("signin").hidden = true;
    $("main").hidden = false;
    $("who").hidden = false;
    $("token").value = "";
    $("refresh").hidden = roles.indexOf("ADMIN") < 0;
    $("tabs").querySelector('[data-table="user"]').hidden = !everyone();
    $("tabs").querySelector('[data-table="provider"]').hidden = !everyone();
    ["anomalies-by", "movers-by"].forEach(function (id) { $(id).querySelector('[value="USER"]').hidden = !everyone(); });
    $("scope").textContent = everyone() ? "· all users" : "· my usage";
    document.title = (everyone() ? "Usage" : "My usage") + " · usage-gateway";
    load(UG.state.parse(window.location.search), false);
  }

  // Keeps a view within what the viewer may ask for.
  function allowed(next) {
    if (!everyone()) {
      next.users = [];
      if (next.table === "user" || next.table === "provider") next.table = "model";
      if (next.anomalies === "USER") next.anomalies = "API_KEY";
      if (next.movers === "USER") next.movers = "API_KEY";
    }
    return next;
  }

  function go(changes) {
    if (!("after" in changes)) cursors = [];
    load(UG.state.change(view, changes), true);
  }

  function filterOf(days) {
    function list(values) { return values.length ? values : null; }
    return {
      from: days.from, to: days.to, userIds: list(view.users), apiKeyIds: list(view.keys),
      models: list(view.models), providers: list(view.providers), teamIds: list(view.teams), tag: view.tag || null,
    };
  }

  function rangeOf(days) {
    return days.from + "/" + days.to;
  }

  // What `options` depend on: the range, and the teams the keys cascade from.
  function optionsKey(days) {
    return rangeOf(days) + "|" + view.teams.join(",");
  }

  function load(next, push) {
    view = allowed(next);
    var search = UG.state.search(view);
    if (push && search !== window.location.search) history.pushState(null, "", window.location.pathname + search);
    else if (search !== window.location.search) history.replaceState(null, "", window.location.pathname + search);
    var days = UG.state.days(view);
    var range = rangeOf(days);
    var optionsWanted = optionsKey(days);
    if (optionsWanted !== optionsFor) { options = null; optionsFor = ""; }
    if (range !== tagsFor) { tags = null; tagsFor = ""; }
    var filtered = view.users.length + view.keys.length + view.models.length + view.providers.length + view.teams.length > 0;
    var picking = document.querySelector("details.picker[open]:not([data-filter=tag])") !== null;
    var separate = SEPARATE.indexOf(view.table) >= 0;
    var page = { first: PAGE_SIZE, after: view.after || null, order: { metric: view.sort, direction: view.direction } };
    var variables = Object.assign({
      filter: filterOf(days), from: days.from, to: days.to, granularity: view.granularity, bySpend: view.metric === "spend",
      options: options === null && (filtered || picking), everyone: everyone(),
      optionTeams: view.teams.length ? view.teams : null,
      stackModel: view.stack === "model", stackProvider: view.stack === "provider",
      tableUser: view.table === "user", tableModel: view.table === "model",
      tableProvider: view.table === "provider", tableKey: view.table === "key",
    }, page);
    drawControls(days);
    var mine = ++sequence;
    var drawn = false;
    document.documentElement.setAttribute("data-loading", "true");
    var main = api.dashboard(token, variables).then(function (answer) {
      if (mine !== sequence) return;
      if (answer.errors.some(function (e) { return e.code === "UNAUTHENTICATED"; })) {
        signOut("Your token was refused (" + answer.errors[0].message + "). Sign in again.");
        return;
      }
      notify(answer.errors.map(function (e) { return e.message; }), answer.warnings);
      if (answer.data && answer.data.filterOptions) {
        options = answer.data.filterOptions;
        optionsFor = optionsWanted;
        drawFilters();
      }
      $("main").classList.toggle("stale", !(answer.data && answer.data.usage));
      if (answer.data && answer.data.usage) {
        draw(answer.data, days, !separate, variables.filter);
        drawn = true;
      }
    }, function (error) {
      if (mine !== sequence) return;
      notify(["The gateway could not be reached: " + error.message], []);
      $("main").classList.add("stale");
    });
    var side = !separate ? null : api.breakdown(token, Object.assign({
      filter: variables.filter, tableTeam: view.table === "team", tableTag: view.table === "tag",
      tableModelGroup: view.table === "modelGroup", tableEndpoint: view.table === "endpoint", tableMcp: view.table === "mcp",
    }, page)).then(function (answer) {
      if (mine !== sequence) return;
      if (answer.data && answer.data.usage) drawTable(answer.data.usage);
      else refuseTable(answer.errors.map(function (e) { return e.message; }).join(" ") || "The gateway gave no answer.");
    }, function (error) {
      if (mine !== sequence) return;
      refuseTable("The gateway could not be reached: " + error.message);
    });
    Promise.all([main, side]).then(function () {
      if (mine !== sequence) return;
      document.documentElement.setAttribute("data-loading", "false");
      if (!drawn) return;
      draws += 1;
      document.documentElement.setAttribute("data-draws", String(draws));
      if (draws === 1) performance.mark("first-view");
      loadInsights(variables.filter);
    });
  }

  // Budgets, forecast, anomalies and movers: after the view is drawn, each asked for only when changed.
  function loadInsights(filter) {
    UG.insights.load(token, filter, {
      view: function () { return view; },
      open: function (next) { cursors = []; load(next, true); },
      filter: function (kind, id) {
        var changes = {};
        changes[kind] = view[kind].concat([id]);
        go(changes);
      },
      redraw: function () { if (shown) UG.trend.draw($("chart"), shown.usage, view, UG.insights.current(shown.filter)); },
    });
  }

  // A change that only an insight section depends on: the address follows, the view is not asked again.
  function amend(changes) {
    view = allowed(Object.assign({}, view, changes));
    history.pushState(null, "", window.location.pathname + UG.state.search(view));
    if (shown) loadInsights(shown.filter);
  }

  function notify(errors, warnings) {
    var node = $("alert");
    node.textContent = "";
    errors.concat(warnings).forEach(function (text) {
      var line = document.createElement("p");
      line.textContent = text;
      node.appendChild(line);
    });
    node.className = errors.length ? "alert" : "alert warn";
    node.hidden = errors.length + warnings.length === 0;
  }

  function press(group, attribute, value) {
    $(group).querySelectorAll("button[" + attribute + "]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute(attribute) === value ? "true" : "false");
    });
  }

  function drawControls(days) {
    press("ranges", "data-range", view.range);
    press("metric", "data-metric", view.metric);
    press("granularity", "data-granularity", view.granularity);
    press("tabs", "data-table", view.table);
    $("stack").value = view.stack;
    $("anomalies-by").value = view.anomalies;
    $("movers-by").value = view.movers;
    $("custom").hidden = view.range !== "custom";
    $("custom-from").value = days.from;
    $("custom-to").value = days.to;
    $("chart-title").textContent = (view.metric === "spend" ? "Spend" : "Requests") + " per " + view.granularity.toLowerCase();
    drawFilters();
  }

  // The filter choices for `teams` in the current range (no view change, so not the view's request).
  function fetchOptions(teams) {
    var days = UG.state.days(view);
    return api.filterOptions(token, {
      from: days.from, to: days.to, everyone: everyone(), optionTeams: teams.length ? teams : null,
    });
  }

  // A picker opened before its choices are known: ask for them.
  function askOptions(kind) {
    if (kind === "tag") { askTags(); return; }
    var wanted = optionsKey(UG.state.days(view));
    if (options !== null || optionsAsked === wanted) return;
    optionsAsked = wanted;
    fetchOptions(view.teams).then(function (answer) {
      optionsAsked = "";
      if (answer.data && answer.data.filterOptions && optionsKey(UG.state.days(view)) === wanted) {
        options = answer.data.filterOptions;
        optionsFor = wanted;
        drawFilters();
      } else if (answer.errors.length) {
        notify(answer.errors.map(function (e) { return e.message; }), []);
      }
    }, function () { optionsAsked = ""; });
  }

  function askTags() {
    var range = rangeOf(UG.state.days(view));
    if (tags !== null || tagsAsked === range) return;
    tagsAsked = range;
    var days = UG.state.days(view);
    api.tags(token, { from: days.from, to: days.to }).then(function (answer) {
      tagsAsked = "";
      if (answer.data && answer.data.filterOptions && rangeOf(UG.state.days(view)) === range) {
        tags = answer.data.filterOptions.tags;
        tagsFor = range;
        drawFilters();
      } else if (answer.errors.length) {
        notify(answer.errors.map(function (e) { return e.message; }), []);
      }
    }, function () { tagsAsked = ""; });
  }

  function changeFilter(kind, values) {
    if (kind === null) { go({ users: [], keys: [], models: [], providers: [], teams: [], tag: "" }); return; }
    var changes = {};
    changes[kind] = values;
    if (kind === "users" && options && values.length) {
      // Keys cascade from users: keep only chosen keys that belong to a chosen user.
      var owned = options.apiKeys.filter(function (k) { return k.user && values.indexOf(k.user.id) >= 0; }).map(function (k) { return k.id; });
      changes.keys = view.keys.filter(function (k) { return owned.indexOf(k) >= 0; });
    }
    if (kind === "teams" && values.length && view.keys.length) {
      // Keys cascade from teams too: keep only chosen keys used in a chosen team (the gateway knows which).
      fetchOptions(values).then(function (answer) {
        var keys = answer.data && answer.data.filterOptions ? answer.data.filterOptions.apiKeys.map(function (k) { return k.id; }) : [];
        changes.keys = view.keys.filter(function (k) { return keys.indexOf(k) >= 0; });
        go(changes);
      }, function () { go(changes); });
      return;
    }
    go(changes);
  }

  function drawFilters() {
    UG.filters.draw($("filters"), $("chips"), options, tags, view, everyone(), askOptions, changeFilter);
  }

  function drawTable(usage) {
    var connection = UG.tables.draw($("table"), usage, view, {
      sort: function (metric, direction) { go({ sort: metric, direction: direction }); },
      filter: function (kind, id) {
        var changes = {};
        changes[kind] = kind === "tag" ? id : view[kind].concat([id]);
        go(changes);
      },
    });
    drawPager(connection);
  }

  function refuseTable(message) {
    UG.tables.refused($("table"), view, message);
    $("page-info").textContent = "";
    ["next-page", "previous-page", "first-page"].forEach(function (id) { $(id).disabled = true; });
  }

  // `withTable`: the table came in the same answer (else its own request draws it).
  function draw(data, days, withTable, filter) {
    var usage = data.usage;
    shown = { usage: usage, filter: filter };
    var viewer = data.viewer;
    $("viewer").textContent = viewer.id + " · " + viewer.roles.map(function (r) { return r.toLowerCase().replace("_", " "); }).join(", ");
    var length = UG.state.length(days);
    $("period").textContent = f.span(usage.from, usage.to) + " · " + f.integer(length) + (length === 1 ? " UTC day" : " UTC days");
    drawFreshness(usage.freshness);
    UG.cards.draw($("cards"), usage, everyone(), length);
    UG.trend.draw($("chart"), usage, view, UG.insights.current(filter));
    if (withTable) drawTable(usage);
  }

  function dayList(days) {
    var shown = days.slice(0, 4).map(f.day).join(", ");
    return days.length > 4 ? shown + " and " + (days.length - 4) + " more" : shown;
  }

  function drawFreshness(freshness) {
    var node = $("freshness");
    node.textContent = "";
    var parts = [];
    parts.push(freshness.complete ? { text: "Complete and verified", tone: "good" } : { text: "Not complete", tone: "warn" });
    parts.push({ text: freshness.openDays.length ? "Open (may still change): " + dayList(freshness.openDays) : "No open days", tone: "" });
    parts.push({ text: freshness.missingDays.length ? "Missing: " + dayList(freshness.missingDays) : "No missing days", tone: freshness.missingDays.length ? "bad" : "" });
    parts.push({ text: freshness.unverifiedDays.length ? "Unverified: " + dayList(freshness.unverifiedDays) : "No unverified days", tone: freshness.unverifiedDays.length ? "warn" : "" });
    parts.push({ text: "As of " + f.instant(freshness.asOf), tone: "" });
    parts.forEach(function (part) {
      var span = document.createElement("span");
      span.className = "fact" + (part.tone ? " " + part.tone : "");
      span.textContent = part.text;
      node.appendChild(span);
    });
  }

  function drawPager(connection) {
    var start = cursors.length * PAGE_SIZE;
    var count = connection.nodes.length;
    var total = connection.totalCount;
    var text;
    if (total === 0) text = "No rows";
    else if (view.after && !cursors.length) text = f.integer(count) + " rows of " + f.integer(total); // a shared link's page
    else text = "Rows " + f.integer(start + 1) + "–" + f.integer(start + count) + " of " + f.integer(total);
    $("page-info").textContent = text;
    $("next-page").disabled = !connection.pageInfo.hasNextPage;
    $("next-page").setAttribute("data-cursor", connection.pageInfo.endCursor || "");
    $("previous-page").disabled = !view.after;
    $("first-page").disabled = !view.after;
  }

  function wire() {
    $("signin-form").addEventListener("submit", function (event) {
      event.preventDefault();
      signIn($("token").value);
    });
    $("sign-out").addEventListener("click", function () { signOut(""); });
    $("ranges").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-range]");
      if (!button) return;
      var range = button.getAttribute("data-range");
      if (range === "custom") {
        $("custom").hidden = false;
        press("ranges", "data-range", "custom");
        $("custom-from").focus();
        return;
      }
      go({ range: range, from: "", to: "" });
    });
    $("custom").addEventListener("submit", function (event) {
      event.preventDefault();
      var from = $("custom-from").value;
      var to = $("custom-to").value;
      if (!from || !to || from > to) { notify(["Choose a first day on or before the last day."], []); return; }
      go({ range: "custom", from: from, to: to });
    });
    $("metric").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-metric]");
      if (button) go({ metric: button.getAttribute("data-metric"), after: view.after });
    });
    $("granularity").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-granularity]");
      if (button) go({ granularity: button.getAttribute("data-granularity"), after: view.after });
    });
    $("stack").addEventListener("change", function () { go({ stack: $("stack").value, after: view.after }); });
    $("anomalies-by").addEventListener("change", function () { amend({ anomalies: $("anomalies-by").value }); });
    $("movers-by").addEventListener("change", function () { amend({ movers: $("movers-by").value }); });
    $("tabs").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-table]");
      if (button && button.getAttribute("data-table") !== view.table) go({ table: button.getAttribute("data-table") });
    });
    $("next-page").addEventListener("click", function () {
      cursors.push(view.after);
      go({ after: $("next-page").getAttribute("data-cursor") });
    });
    $("previous-page").addEventListener("click", function () {
      go({ after: cursors.length ? cursors.pop() : "" });
    });
    $("first-page").addEventListener("click", function () { cursors = []; go({ after: "" }); });
    $("refresh").addEventListener("click", function () {
      var button = $("refresh");
      button.disabled = true;
      UG.actions.refreshToday(token, $("export-status"), function (error) {
        button.disabled = false;
        if (error) return;
        UG.insights.forget(); // today's numbers may have changed: the insights too
        load(view, false);
      });
    });
    $("export").addEventListener("click", function () {
      var button = $("export");
      button.disabled = true;
      UG.actions.exportUsage(token, filterOf(UG.state.days(view)), $("export-format").value, $("export-status"), function () {
        button.disabled = false;
      });
    });
    window.addEventListener("popstate", function () {
      if (!token) return;
      cursors = [];
      load(UG.state.parse(window.location.search), false);
    });
  }

  wire();
  var config = api.config;
  if (config.location) history.replaceState(null, "", config.location);
  if (config.token) {
    signIn(config.token);
  } else {
    token = stored(TOKEN);
    try { roles = JSON.parse(stored(ROLES) || "[]"); } catch (error) { roles = []; }
    if (token && roles.length) start();
    else showSignIn("");
  }
})();
