// Today's usage tiles on the dashboard: start from the rollups, then add each
// finished run from the live event stream (the same WebSocket as the events page).
(function () {
  "use strict";
  var root = document.getElementById("usage-today");
  if (!root || !window.portalEvents) return;
  function tile(name) { return root.querySelector("[data-testid=today-" + name + "]"); }
  function add(name, amount, format) {
    var el = tile(name);
    var value = parseFloat(el.dataset.value || "0") + amount;
    el.dataset.value = String(value);
    el.textContent = format ? format(value) : String(value);
  }
  var seen = {};
  window.portalEvents.connect(root.dataset.ws, function (frame) {
    if (seen[frame.id]) return;
    seen[frame.id] = true;
    if (frame.type !== "run.succeeded" && frame.type !== "run.failed" &&
        frame.type !== "run.cancelled") return;
    var d = frame.data || {};
    add("requests", d.attempts || 0);
    add("tokens", d.attempt_tokens || 0);
    add("cost", parseFloat(d.cost || "0"), function (v) { return "$" + v.toFixed(6).replace(/\.?0+$/, ""); });
  }, function () {});
})();
