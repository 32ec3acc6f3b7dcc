// Issue 17's insights: budget bars, the anomalies list, the top movers, and the forecast the chart draws.
// Each is its own request, made once the view is drawn (a first view never waits for one) and only when
// what it depends on changed. A section whose field the gateway lacks (an older server), refuses under
// the filter, or fails on hides its content behind a short note; the rest of the page stands.
"use strict";
UG.insights = (function () {
  var f = UG.format;
  var SHOWN = { budgets: 10, anomalies: 10, movers: 8 };
  var ENTITIES = { API_KEY: "Key", USER: "User", TEAM: "Team", MODEL: "Model", PROVIDER: "Provider" };
  // The view's filter list an entity of each dimension goes into (a mover's name filters on it).
  var FILTERS = { API_KEY: "keys", USER: "users", TEAM: "teams", MODEL: "models", PROVIDER: "providers" };
  var STATUS = {
    EXCEEDED: { mark: "✕", text: "Exceeded", tone: "bad" },
    AT_RISK: { mark: "!", text: "At risk", tone: "warn" },
    OK: { mark: "✓", text: "On track", tone: "good" },
  };
  // Per section: the inputs it was last asked for, and a sequence number so a late answer is dropped.
  var asked = { budgets: "", forecast: "", anomalies: "", movers: "" };
  var sequence = { budgets: 0, forecast: 0, anomalies: 0, movers: 0 };
  var forecast = { key: "", value: null, note: "" };

  function $(id) { return document.getElementById(id); }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // What went wrong with a section's answer, in a short note; null when it has its data.
  function problem(answer, field, what) {
    if (answer.data && answer.data.usage && answer.data.usage[field]) return null;
    var error = answer.errors[0] || { message: "the gateway gave no answer.", code: "" };
    if (/Cannot query field|Unknown type|Unknown argument/.test(error.message)) {
      return what + ": not available from this gateway (it has no " + field + " field yet).";
    }
    if (error.code === "BAD_USER_INPUT") return what + ": not for this filter. " + error.message;
    return what + ": could not be loaded. " + error.message;
  }

  // Shows `note` in place of a section's content (or the content, with `note` null).
  function say(section, note) {
    var box = $(section + "-note");
    box.textContent = note || "";
    box.hidden = !note;
    $(section).hidden = Boolean(note);
    $(section + "-panel").setAttribute("data-state", note ? "note" : "shown");
    $(section + "-panel").setAttribute("aria-busy", "false");
  }

  // Asks for a section when its inputs changed; `draw(answer)` unless a newer request was made. A request
  // that fails in the network is drawn as an answer with that error.
  function refresh(section, key, request, draw) {
    if (asked[section] === key) return;
    asked[section] = key;
    var mine = ++sequence[section];
    var panel = $(section + "-panel");
    if (panel) panel.setAttribute("aria-busy", "true");
    request().then(function (answer) {
      if (mine === sequence[section]) draw(answer);
    }, function (error) {
      if (mine !== sequence[section]) return;
      asked[section] = "";
      draw({ data: null, errors: [{ message: "the gateway could not be reached (" + error.message + ").", code: "" }] });
    });
  }

  // ---- Budgets -------------------------------------------------------------------------------------

  function budgetStatus(budget) {
    var status = STATUS[budget.status] || { mark: "?", text: budget.status, tone: "" };
    var text = status.text;
    if (budget.status === "EXCEEDED" && budget.projectedRunOut) text += " on " + f.day(budget.projectedRunOut);
    else if (budget.status === "AT_RISK" && budget.projectedRunOut) text += ": runs out " + f.day(budget.projectedRunOut);
    else if (budget.projectedRunOut) text += ": runs out " + f.day(budget.projectedRunOut);
    return { mark: status.mark, text: text, tone: status.tone };
  }

  function drawBudget(budget) {
    var item = element("li", "budget");
    item.setAttribute("data-entity", budget.entity);
    item.setAttribute("data-id", budget.id);
    item.setAttribute("data-status", budget.status);
    var status = budgetStatus(budget);
    item.classList.add(status.tone);
    var head = element("div", "budget-head");
    var who = element("div", "budget-who");
    who.appendChild(element("span", "budget-name", budget.name || budget.id));
    var period = f.span(budget.periodFrom, budget.periodTo) + (budget.duration ? " (" + budget.duration + ")" : " (no reset)");
    who.appendChild(element("span", "hint", ENTITIES[budget.entity] + " · " + period + (budget.complete ? "" : " · some days missing")));
    head.appendChild(who);
    var badge = element("span", "status " + status.tone);
    var mark = element("span", "", status.mark + " ");
    mark.setAttribute("aria-hidden", "true");
    badge.appendChild(mark);
    badge.appendChild(element("span", "status-text", status.text));
    head.appendChild(badge);
    item.appendChild(head);
    var bar = element("div", "meter");
    bar.setAttribute("aria-hidden", "true");
    var fill = element("span", "meter-fill");
    fill.style.width = Math.max(0, Math.min(100, budget.shareUsed * 100)).toFixed(1) + "%";
    bar.appendChild(fill);
    item.appendChild(bar);
    item.appendChild(element("p", "budget-figures",
      f.currency(budget.spend) + " of " + f.currency(budget.limit) + " · " + f.percent(budget.shareUsed) + " used · " +
      f.currency(budget.dailyRate) + " a day recently"));
    return item;
  }

  function drawBudgets(answer) {
    var note = problem(answer, "budgets", "Budgets");
    if (note) { say("budgets", note); $("budgets-summary").textContent = ""; return; }
    var usage = answer.data.usage;
    var list = $("budgets");
    list.textContent = "";
    usage.budgets.nodes.forEach(function (budget) { list.appendChild(drawBudget(budget)); });
    var total = usage.budgets.totalCount;
    $("budgets-summary").textContent = total === 0 ? "" :
      f.integer(usage.exceeded.totalCount) + " exceeded, " + f.integer(usage.atRisk.totalCount) + " at risk, of " +
      f.integer(total) + (total > usage.budgets.nodes.length ? " (most used first, " + usage.budgets.nodes.length + " shown)" : "");
    say("budgets", total === 0 ? "No budgets: none of the keys, users or teams under this filter has a LiteLLM budget." : null);
  }

  // ---- Anomalies -----------------------------------------------------------------------------------

  // The view an anomaly's link opens: its own filter (the entity on its day, under the request's other
  // conditions), the rest of the view (chart, table) kept.
  function anomalyView(view, filter) {
    return UG.state.change(view, {
      range: "custom", from: filter.from, to: filter.to, users: filter.userIds || [], keys: filter.apiKeyIds || [],
      models: filter.models || [], teams: filter.teamIds || [], providers: filter.providers || [], tag: "",
    });
  }

  function measure(anomaly, value) {
    return anomaly.metric === "SPEND" ? f.currency(value) : f.percent(value);
  }

  function drawAnomalies(answer, hooks) {
    var note = problem(answer, "anomalies", "Anomalies");
    if (note) { say("anomalies", note); return; }
    var connection = answer.data.usage.anomalies;
    var list = $("anomalies");
    list.textContent = "";
    connection.nodes.forEach(function (anomaly) {
      var item = element("li", "anomaly");
      item.setAttribute("data-id", anomaly.id);
      item.setAttribute("data-date", anomaly.date);
      var link = element("a", "anomaly-link", (anomaly.name || anomaly.id) + " on " + f.day(anomaly.date));
      link.href = window.location.pathname + UG.state.search(anomalyView(hooks.view(), anomaly.filter));
      link.addEventListener("click", function (event) {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        hooks.open(anomalyView(hooks.view(), anomaly.filter)); // the view as it is now, not when drawn
      });
      item.appendChild(link);
      var what = anomaly.metric === "SPEND" ? "Spend " : "Failure rate ";
      item.appendChild(element("span", "hint", ENTITIES[anomaly.dimension] + (anomaly.name && anomaly.name !== anomaly.id ? " " + anomaly.id : "")));
      item.appendChild(element("p", "anomaly-figures",
        what + measure(anomaly, anomaly.value) + " against a baseline of " + measure(anomaly, anomaly.baseline) +
        " (median of " + anomaly.baselineDays + " earlier days; threshold " + measure(anomaly, anomaly.threshold) + ", " +
        new Intl.NumberFormat(f.locale, { maximumFractionDigits: 1 }).format(anomaly.size) + " spreads above)"));
      list.appendChild(item);
    });
    var more = connection.totalCount > connection.nodes.length ? " (the " + connection.nodes.length + " largest shown)" : "";
    say("anomalies", connection.totalCount === 0 ? "No anomalies in this range: no day left its entity's own baseline." : null);
    var skipped = connection.skippedDays.length ? " Not checked (open, unverified or missing): " +
      connection.skippedDays.slice(0, 3).map(f.day).join(", ") + (connection.skippedDays.length > 3 ? " and " + (connection.skippedDays.length - 3) + " more." : ".") : "";
    $("anomalies-summary").textContent = (connection.totalCount ? f.integer(connection.totalCount) + " found" + more + "." : "") + skipped;
  }

  // ---- Top movers ----------------------------------------------------------------------------------

  function drawMovers(answer, hooks) {
    var note = problem(answer, "movers", "Top movers");
    if (note) { say("movers", note); return; }
    var connection = answer.data.usage.movers;
    var list = $("movers");
    list.textContent = "";
    connection.nodes.forEach(function (mover) {
      var item = element("li", "mover");
      item.setAttribute("data-id", mover.id);
      var head = element("div", "budget-head");
      var kind = FILTERS[mover.dimension];
      var chosen = hooks.view()[kind].indexOf(mover.id) >= 0;
      var name = element("button", "row-link budget-name", mover.name || mover.id);
      name.type = "button";
      name.title = (chosen ? "Already filtered on " : "Filter on ") + (mover.name || mover.id);
      name.disabled = chosen;
      name.addEventListener("click", function () { hooks.filter(kind, mover.id); });
      head.appendChild(name);
      var up = mover.change >= 0;
      var badge = element("span", "status " + (mover.status === "CHANGED" ? "" : "neutral"));
      var arrow = element("span", "", (up ? "▲" : "▼") + " ");
      arrow.setAttribute("aria-hidden", "true");
      badge.appendChild(arrow);
      var change = (up ? "up " : "down ") + f.currency(Math.abs(mover.change)) +
        (mover.changeRelative === null ? "" : " (" + f.percent(Math.abs(mover.changeRelative)) + ")");
      badge.appendChild(element("span", "status-text", mover.status === "NEW" ? "new: " + change : mover.status === "VANISHED" ? "gone: " + change : change));
      head.appendChild(badge);
      item.appendChild(head);
      item.appendChild(element("p", "budget-figures", f.currency(mover.current) + " now, " + f.currency(mover.previous) + " in the previous period"));
      list.appendChild(item);
    });
    say("movers", connection.totalCount === 0 ? "Nothing to compare: no spend in this range or the one before." : null);
  }

  // ---- Forecast ------------------------------------------------------------------------------------

  function drawForecast(answer, view, redraw) {
    var note = problem(answer, "forecast", "Forecast");
    forecast.value = note ? null : answer.data.usage.forecast;
    forecast.note = note || "";
    caption(view);
    redraw();
  }

  // The chart's caption: the forecast in words with its method, or why there is none.
  function caption(view) {
    var days = UG.state.days(view);
    var node = $("forecast-note");
    node.textContent = "";
    var value = forecast.value;
    if (!value) {
      node.textContent = forecast.note;
      node.hidden = !forecast.note;
      return;
    }
    node.hidden = false;
    if (!value.points.length) {
      node.textContent = "Forecast: nothing left to forecast, the month of this range's last day is over.";
      return;
    }
    node.appendChild(element("span", "forecast-text", UG.trend.forecastText(value, view)));
    var drawn = view.granularity !== "DAY" ? " The band is drawn on the daily chart."
      : UG.trend.forecastDays(days, view, value) ? "" : " The band is drawn when the range reaches " + f.day(value.from) + ".";
    node.appendChild(element("span", "forecast-method",
      " Method: " + value.method.replace(/\.?$/, ".") + " Inputs: " + value.inputDays + " closed, verified days, " +
      f.span(value.inputFrom, value.inputTo) + "." + drawn));
  }

  // ---- The page's entry points ---------------------------------------------------------------------

  // After a view is drawn: ask for what changed. `hooks`: view() the current view, open(view) follows a
  // link, filter(kind, id) adds an entity to the filter, redraw() redraws the chart (with `current()`'s
  // forecast).
  function load(token, filter, hooks) {
    var view = hooks.view();
    var key = JSON.stringify(filter);
    refresh("budgets", key, function () {
      return UG.api.budgets(token, { filter: filter, first: SHOWN.budgets });
    }, drawBudgets);
    refresh("forecast", key, function () {
      return UG.api.forecast(token, { filter: filter });
    }, function (answer) { forecast.key = key; drawForecast(answer, hooks.view(), hooks.redraw); });
    if (asked.forecast === key && forecast.key === key) caption(view);
    var anomalyKey = key + view.anomalies;
    refresh("anomalies", anomalyKey, function () {
      return UG.api.anomalies(token, { filter: filter, dimension: view.anomalies, first: SHOWN.anomalies });
    }, function (answer) { drawAnomalies(answer, hooks); });
    refresh("movers", key + view.movers, function () {
      return UG.api.movers(token, { filter: filter, dimension: view.movers, first: SHOWN.movers });
    }, function (answer) { drawMovers(answer, hooks); });
  }

  // The forecast for the chart when it is the one of `filter` (else null: the chart draws without).
  function current(filter) {
    return forecast.key === JSON.stringify(filter) ? forecast.value : null;
  }

  function forget() {
    Object.keys(asked).forEach(function (section) { asked[section] = ""; sequence[section] += 1; });
    forecast = { key: "", value: null, note: "" };
  }

  return { load: load, current: current, forget: forget };
})();
