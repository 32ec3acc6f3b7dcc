// Numbers and dates for people, in the viewer's locale. Days are UTC calendar days (the API's `Date`),
// so they are formatted in UTC whatever the viewer's time zone; instants (as-of) in the viewer's own.
"use strict";
window.UG = window.UG || {};
UG.format = (function () {
  var locale = navigator.language || "en-US";
  var money = new Intl.NumberFormat(locale, { style: "currency", currency: "USD" });
  var smallMoney = new Intl.NumberFormat(locale, {
    style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 4,
  });
  var compactMoney = new Intl.NumberFormat(locale, {
    style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1,
  });
  var integer = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  var compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
  var percent = new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var points = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "exceptZero" });
  var milliseconds = new Intl.NumberFormat(locale, { style: "unit", unit: "millisecond", maximumFractionDigits: 0 });
  var seconds = new Intl.NumberFormat(locale, { style: "unit", unit: "second", maximumFractionDigits: 2 });
  var day = new Intl.DateTimeFormat(locale, { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" });
  var shortDay = new Intl.DateTimeFormat(locale, { timeZone: "UTC", day: "numeric", month: "short" });
  var month = new Intl.DateTimeFormat(locale, { timeZone: "UTC", month: "short", year: "numeric" });
  var instant = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });

  function utcDate(iso) {
    return new Date(iso + "T00:00:00Z");
  }

  return {
    locale: locale,
    currency: function (value) {
      var n = Number(value);
      return n !== 0 && Math.abs(n) < 1 ? smallMoney.format(n) : money.format(n);
    },
    compactCurrency: function (value) { return compactMoney.format(Number(value)); },
    integer: function (value) { return integer.format(Number(value)); },
    compact: function (value) { return compact.format(Number(value)); },
    percent: function (value) { return value === null || value === undefined ? "–" : percent.format(value); },
    points: function (value) { return points.format(value * 100) + " pp"; },
    latency: function (ms) {
      if (ms === null || ms === undefined) return "–";
      return ms >= 10000 ? seconds.format(ms / 1000) : milliseconds.format(ms);
    },
    day: function (iso) { return iso ? day.format(utcDate(iso)) : "–"; },
    shortDay: function (iso) { return shortDay.format(utcDate(iso)); },
    month: function (iso) { return month.format(utcDate(iso)); },
    span: function (from, to) {
      return from === to ? day.format(utcDate(from)) : day.formatRange(utcDate(from), utcDate(to));
    },
    instant: function (iso) { return iso ? instant.format(new Date(iso)) : "–"; },
    bytes: function (n) {
      if (n === null || n === undefined) return "";
      var units = ["byte", "kilobyte", "megabyte", "gigabyte"];
      var i = 0;
      while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
      return new Intl.NumberFormat(locale, { style: "unit", unit: units[i], unitDisplay: "short", maximumFractionDigits: 1 }).format(n);
    },
  };
})();
