// The live events page and the dashboard's usage tiles: one WebSocket per page,
// reconnecting by itself; after a reconnect the gap is filled from the history.
(function () {
  "use strict";

  function connect(path, onFrame, onState, onReopen) {
    var delay = 500, opened = false;
    function open() {
      var proto = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(proto + location.host + path);
      onState("connecting");
      ws.onopen = function () {
        delay = 500;
        onState("live");
        if (opened && onReopen) onReopen();
        opened = true;
      };
      ws.onmessage = function (msg) { onFrame(JSON.parse(msg.data)); };
      ws.onclose = function (ev) {
        if (ev.code === 4403) { onState("refused"); return; }
        onState("reconnecting");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
  }
  window.portalEvents = { connect: connect };

  var root = document.getElementById("events");
  if (!root) return;
  var feed = root.querySelector(".events-feed");
  var status = document.getElementById("events-status");
  var form = root.querySelector("form");
  var pauseButton = root.querySelector("[data-testid=pause]");
  var pausedCount = root.querySelector("[data-testid=paused-count]");
  var paused = false, held = [];
  // The newest sequence received, shown or held: where a reconnect's gap starts. Not
  // read from the feed, which lacks what is held and what a replay took out.
  var lastSeq = 0;
  feed.querySelectorAll(".event-row").forEach(function (row) {
    lastSeq = Math.max(lastSeq, parseInt(row.dataset.seq, 10));
  });

  function shown(id) { return !!feed.querySelector('[data-id="' + id + '"]'); }
  function matches(row) {
    var t = form.type.value, a = form.assistant.value, k = form.key.value;
    return (!t || row.dataset.type === t) && (!a || row.dataset.assistant === a) &&
      (!k || row.dataset.key === k);
  }
  function applyFilters() {
    feed.querySelectorAll(".event-row").forEach(function (row) { row.hidden = !matches(row); });
  }
  function insert(frame) {
    lastSeq = Math.max(lastSeq, frame.sequence);
    if (shown(frame.id)) return;
    var tmp = document.createElement("template");
    tmp.innerHTML = frame.html.trim();
    var row = tmp.content.firstElementChild;
    row.hidden = !matches(row);
    // Newest first, placed by sequence so a late row still lands where it belongs.
    var after = null;
    var rows = feed.querySelectorAll(".event-row");
    for (var i = 0; i < rows.length; i++) {
      if (parseInt(rows[i].dataset.seq, 10) < frame.sequence) { after = rows[i]; break; }
    }
    feed.insertBefore(row, after);
    var empty = root.querySelector("[data-testid=events-empty]");
    if (empty) empty.remove();
  }
  function receive(frame) {
    if (paused) {
      // A frame can come twice (live and from the gap's history): count it once.
      if (shown(frame.id) || held.some(function (h) { return h.id === frame.id; })) return;
      lastSeq = Math.max(lastSeq, frame.sequence);
      held.push(frame);
      pausedCount.textContent = held.length + " new while paused";
      return;
    }
    insert(frame);
  }
  function fillGap() {
    fetch(root.dataset.history + "?after=" + lastSeq, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) { body.events.forEach(receive); });
  }
  function setState(state) {
    status.dataset.state = state;
    status.textContent = state;
  }
  form.addEventListener("change", applyFilters);
  pauseButton.addEventListener("click", function () {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      held.forEach(insert);
      pausedCount.textContent = held.length ? held.length + " arrived while paused" : "";
      held = [];
    }
  });
  root.querySelector("[data-testid=replay]").addEventListener("click", function () {
    var since = form.since.value;
    if (!since) return;
    var from = new Date(since); // the user's local time
    fetch(root.dataset.replay + "?since=" + encodeURIComponent(from.toISOString()),
      { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (!body.events) return;
        // The feed shows what happened since then: older rows go, the replay fills in.
        feed.querySelectorAll(".event-row").forEach(function (row) {
          if (new Date(row.querySelector("time").getAttribute("datetime")) < from) row.remove();
        });
        body.events.forEach(insert);
      });
  });
  connect(root.dataset.ws, receive, setState, fillGap);
})();
