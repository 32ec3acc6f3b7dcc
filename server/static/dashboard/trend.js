// The chart: spend or requests per day, week or month, optionally stacked by model or provider (the top
// eight, the rest as "Other"). Chart.js draws it, with its tooltip on hover; the canvas carries a
// summary for screen readers.
"use strict";
UG.trend = (function () {
  var f = UG.format;
  var PALETTE = ["#4f46e5", "#0891b2", "#d97706", "#db2777", "#16a34a", "#7c3aed", "#dc2626", "#0f766e"];
  var OTHER = "#9ca3af";
  var chart = null;

  Chart.defaults.color = "#4b5563";
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;

  function label(point, granularity) {
    if (granularity === "MONTH") return f.month(point.date);
    if (granularity === "WEEK") return f.shortDay(point.from);
    return f.shortDay(point.date);
  }

  function valueOf(metrics, metric) {
    return metric === "spend" ? metrics.spend : Number(metrics.requests);
  }

  function datasets(usage, view) {
    var total = usage.timeSeries.map(function (point) { return valueOf(point.metrics, view.metric); });
    var stack = view.stack === "model" ? usage.stackModels : view.stack === "provider" ? usage.stackProviders : null;
    if (!stack) {
      return [{ label: view.metric === "spend" ? "Spend" : "Requests", data: total, backgroundColor: PALETTE[0], borderRadius: 3 }];
    }
    var rest = total.slice();
    var sets = stack.nodes.map(function (node, index) {
      var data = node.timeSeries.map(function (point, i) {
        var value = valueOf(point.metrics, view.metric);
        rest[i] -= value;
        return value;
      });
      return { label: node.model || node.provider, data: data, backgroundColor: PALETTE[index % PALETTE.length] };
    });
    if (stack.totalCount > stack.nodes.length) {
      sets.push({ label: "Other", data: rest.map(function (v) { return Math.max(0, v); }), backgroundColor: OTHER });
    }
    return sets;
  }

  function describe(usage, view, sets) {
    var series = usage.timeSeries;
    if (!series.length) return "No data in this range.";
    var values = series.map(function (point) { return valueOf(point.metrics, view.metric); });
    var top = values.indexOf(Math.max.apply(null, values));
    var show = view.metric === "spend" ? f.currency : f.integer;
    var unit = { DAY: "day", WEEK: "week", MONTH: "month" }[view.granularity];
    var stacked = sets.length > 1 ? ", stacked by " + view.stack + " (" + sets.map(function (s) { return s.label; }).join(", ") + ")" : "";
    return (view.metric === "spend" ? "Spend" : "Requests") + " per " + unit + " from " + f.day(usage.from) + " to " +
      f.day(usage.to) + " (UTC days)" + stacked + ". Highest: " + show(values[top]) + " in the " + unit + " of " +
      f.day(series[top].from) + ".";
  }

  function draw(canvas, usage, view) {
    var sets = datasets(usage, view);
    var series = usage.timeSeries;
    var money = view.metric === "spend";
    canvas.setAttribute("aria-label", describe(usage, view, sets));
    var data = { labels: series.map(function (point) { return label(point, view.granularity); }), datasets: sets };
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true, grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
        y: {
          stacked: true,
          beginAtZero: true,
          grid: { color: "#eef0f3" },
          border: { display: false },
          ticks: { callback: function (value) { return money ? f.compactCurrency(value) : f.compact(value); } },
        },
      },
      plugins: {
        legend: { display: sets.length > 1, position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
        tooltip: {
          callbacks: {
            title: function (items) {
              var point = series[items[0].dataIndex];
              return f.span(point.from, point.to) + " (UTC)";
            },
            label: function (item) {
              return " " + item.dataset.label + ": " + (money ? f.currency(item.parsed.y) : f.integer(item.parsed.y));
            },
            footer: function (items) {
              if (items.length < 2) return "";
              var point = series[items[0].dataIndex];
              return "Total: " + (money ? f.currency(point.metrics.spend) : f.integer(point.metrics.requests));
            },
          },
        },
      },
    };
    if (chart) {
      chart.data = data;
      chart.options = options;
      chart.update();
    } else {
      chart = new Chart(canvas, { type: "bar", data: data, options: options });
    }
  }

  return { draw: draw };
})();
