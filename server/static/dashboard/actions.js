// The two actions: Refresh today (admins only), and Export with its format, progress and download.
"use strict";
UG.actions = (function () {
  var f = UG.format;
  var POLL_MS = 1000;

  function say(node, text, busy) {
    node.hidden = !text;
    node.textContent = text;
    node.setAttribute("aria-busy", busy ? "true" : "false");
    if (busy) {
      var bar = document.createElement("progress"); // indeterminate: the API gives no fraction done
      bar.setAttribute("aria-label", text);
      node.appendChild(bar);
    }
  }

  function download(url) {
    var link = document.createElement("a");
    link.href = url;
    link.setAttribute("download", "");
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  function finished(node, record) {
    node.textContent = "";
    var size = record.byteSize !== null ? ", " + f.bytes(Number(record.byteSize)) : "";
    node.appendChild(document.createTextNode(
      "Export ready: " + f.integer(record.rowCount || 0) + " rows" + size + ". The download has started; "));
    var link = document.createElement("a");
    link.href = record.downloadUrl;
    link.setAttribute("download", "");
    link.textContent = "download it again";
    node.appendChild(link);
    node.appendChild(document.createTextNode("."));
    node.hidden = false;
    node.setAttribute("aria-busy", "false");
    download(record.downloadUrl);
  }

  // Starts an export of `filter` and follows it until its file is downloaded; `done(error)` at the end.
  function exportUsage(token, filter, format, node, done) {
    say(node, "Preparing the " + format + " export…", true);
    UG.api.exportUsage(token, filter, format).then(function (answer) {
      if (answer.errors.length) throw new Error(answer.errors[0].message);
      follow(answer.data.exportUsage, 0);
    }).catch(function (error) {
      say(node, "Export failed: " + error.message, false);
      done(error);
    });

    function follow(record, polls) {
      if (record.status === "DONE") {
        finished(node, record);
        done(null);
      } else if (record.status === "FAILED" || record.status === "EXPIRED") {
        say(node, "Export " + record.status.toLowerCase() + (record.error ? ": " + record.error : "."), false);
        done(new Error(record.error || record.status));
      } else {
        var seconds = Math.round((polls * POLL_MS) / 1000);
        say(node, "Export " + record.status.toLowerCase() + " in the background" + (seconds ? " (" + seconds + " s)" : "") + "…", true);
        setTimeout(function () {
          UG.api.exportProgress(token, record.id).then(function (answer) {
            if (answer.errors.length || !answer.data.export) throw new Error(answer.errors.length ? answer.errors[0].message : "the export is gone");
            follow(answer.data.export, polls + 1);
          }).catch(function (error) {
            say(node, "Export failed: " + error.message, false);
            done(error);
          });
        }, POLL_MS);
      }
    }
  }

  function refreshToday(token, node, done) {
    say(node, "Fetching today again from LiteLLM…", true);
    UG.api.refreshToday(token).then(function (answer) {
      if (answer.errors.length) throw new Error(answer.errors[0].message);
      var result = answer.data.refreshToday;
      var days = result.days.map(f.day).join(", ");
      say(node, "Refreshed " + days + " at " + f.instant(result.refreshedAt) + (result.changed ? ": the numbers changed." : ": nothing changed."), false);
      done(null);
    }).catch(function (error) {
      say(node, "Refresh failed: " + error.message, false);
      done(error);
    });
  }

  return { exportUsage: exportUsage, refreshToday: refreshToday };
})();
