// The chart: spend or requests per day, week or month, optionally stacked by model or provider (the top
// eight, the rest as "Other"), and on the daily chart the month-end forecast with its 80 % band (lines
// after the bars, days past the range appended). Chart.js draws it, with its tooltip on hover; the
// canvas carries a summary for screen readers.
"use strict";
UG.trend = (function () {
  var f = UG.format;
  var PALETTE = ["#4f46e5", "#0891b2", "#d97706", "#db2777", "#16a34a", "#7c3aed", "#dc2626", "#0f766e"];
  var OTHER = "#9ca3af";
  var FORECAST = "#b45309";
  var BAND = "rgba(217, 119, 6, 0.18)";
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

  // The forecast's days on the chart's axis: null when it cannot be drawn there (not the daily chart, or
  // its days do not follow on from the range's).
  function forecastDays(usage, view, forecast) {
    if (!forecast || view.granularity !== "DAY" || !forecast.points.length) return null;
    var after = UG.state.addDays(usage.to, 1);
    if (forecast.from > after || forecast.from < usage.from) return null;
    return forecast.points.map(function (point) { return point.date; });
  }

  // Three lines with their own stacks (never stacked on the bars or on each other): the band's low edge,
  // its high edge filled down to the low one, and the forecast itself, dashed.
  function forecastSets(dates, forecast, view) {
    var field = view.metric === "spend" ? "spend" : "requests";
    var byDate = {};
    forecast.points.forEach(function (point) { byDate[point.date] = point; });
    function line(suffix) {
      return dates.map(function (day) { return byDate[day] ? byDate[day][field + suffix] : null; });
    }
    var common = { type: "line", pointRadius: 0, pointHitRadius: 6, spanGaps: false, order: -1 };
    return [
      Object.assign({ label: "Forecast low", data: line("Low"), borderWidth: 0, borderColor: BAND, backgroundColor: BAND, fill: false, stack: "forecast-low", forecastPart: "low" }, common),
      Object.assign({ label: "Forecast band (80 %)", data: line("High"), borderWidth: 0, borderColor: BAND, backgroundColor: BAND, fill: "-1", stack: "forecast-high", forecastPart: "high" }, common),
      Object.assign({ label: "Forecast", data: line(""), borderWidth: 2, borderDash: [6, 4], borderColor: FORECAST, backgroundColor: FORECAST, fill: false, stack: "forecast", forecastPart: "mid" }, common),
    ];
  }

  function draw(canvas, usage, view, forecast) {
    var sets = datasets(usage, view);
    var series = usage.timeSeries;
    var money = view.metric === "spend";
    canvas.setAttribute("aria-label", describe(usage, view, sets));
    var labels = series.map(function (point) { return label(point, view.granularity); });
    var ahead = forecastDays(usage, view, forecast);
    var forecastByIndex = {};
    if (ahead) {
      var dates = series.map(function (point) { return point.date; });
      ahead.forEach(function (day) {
        if (dates.indexOf(day) < 0) { dates.push(day); labels.push(f.shortDay(day)); }
      });
      dates.forEach(function (day, index) { forecastByIndex[index] = day; });
      sets = sets.concat(forecastSets(dates, forecast, view));
      canvas.setAttribute("aria-label", describe(usage, view, sets.slice(0, -3)) + " " + forecastText(forecast, view));
    }
    var data = { labels: labels, datasets: sets };
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
        legend: {
          display: sets.length > 1,
          position: "bottom",
          labels: { boxWidth: 12, boxHeight: 12, filter: function (item, chartData) { return chartData.datasets[item.datasetIndex].forecastPart !== "low"; } },
        },
        tooltip: {
          filter: function (item) { return item.dataset.forecastPart !== "low" && item.dataset.forecastPart !== "high"; },
          callbacks: {
            title: function (items) {
              var point = series[items[0].dataIndex];
              if (!point) return f.day(forecastByIndex[items[0].dataIndex]) + " (UTC) · forecast";
              return f.span(point.from, point.to) + " (UTC)";
            },
            label: function (item) {
              var show = money ? f.currency : f.integer;
              if (item.dataset.forecastPart === "mid") {
                var low = item.chart.data.datasets[item.datasetIndex - 2].data[item.dataIndex];
                var high = item.chart.data.datasets[item.datasetIndex - 1].data[item.dataIndex];
                return " Forecast: " + show(item.parsed.y) + " (80 % band " + show(low) + "–" + show(high) + ")";
              }
              return " " + item.dataset.label + ": " + show(item.parsed.y);
            },
            footer: function (items) {
              var point = series[items[0].dataIndex];
              var bars = items.filter(function (item) { return !item.dataset.forecastPart; });
              if (!point || bars.length < 2) return "";
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

  // The forecast in words (the chart's caption and the canvas's summary).
  function forecastText(forecast, view) {
    var money = view.metric === "spend";
    var show = money ? f.currency : f.integer;
    var key = money ? "spend" : "requests";
    var what = money ? "spend" : "requests";
    var horizon = forecast.horizon === "MONTH_END" ? "the month to " + f.day(forecast.to) : "the 30 days to " + f.day(forecast.to);
    var text = "Forecast (a projection, not data) for " + horizon + ": " + what + " " + show(forecast[key]) +
      ", 80 % band " + show(forecast[key + "Low"]) + "–" + show(forecast[key + "High"]) + ".";
    if (money && forecast.horizon === "MONTH_END") text += " Spent so far this month: " + f.currency(forecast.actualSpend) + ".";
    return text;
  }

  return { draw: draw, forecastText: forecastText, forecastDays: forecastDays };
})();
