// Streams a run into the page: deltas are appended as they arrive, the final
// message fills in status, usage and timing. Reconnects if the socket drops
// before the run finished (the server resends the state on connect).
(function () {
  const box = document.getElementById("run");
  if (!box || box.dataset.bound) return;
  box.dataset.bound = "1";
  const $ = (id) => document.getElementById(id);
  let finished = ["succeeded", "failed", "cancelled"].includes($("run-status").textContent.trim());
  if (finished) return;

  // Cost as the usage page writes it; an unpriced model is recorded at $0, which is not free.
  function showCost(cost) {
    const box = $("run-cost");
    box.removeAttribute("title");
    if (!cost) {
      box.textContent = "—";
    } else if (cost.priced) {
      box.textContent = `$${cost.amount}`;
    } else {
      box.textContent = cost.amount === "0" ? "unpriced" : `$${cost.amount} + unpriced`;
      box.title = "No price is set for this model: the usage page records it at $0, which is not free.";
    }
  }

  function render(message) {
    if (message.type === "run.state") {
      $("run-status").textContent = message.status;
      $("run-output").textContent = message.output || "";
    } else if (message.type === "run.delta") {
      // Offsets let a late joiner drop text its snapshot already had.
      const out = $("run-output");
      const have = out.textContent.length;
      const end = message.offset + message.delta.length;
      $("run-status").textContent = "running";
      if (end > have && message.offset <= have) {
        out.textContent += message.delta.slice(have - message.offset);
      }
    } else if (message.type === "run.done") {
      finished = true;
      const u = message.usage || {};
      $("run-status").textContent = message.status;
      $("run-output").textContent = message.output || $("run-output").textContent;
      $("run-model").textContent = message.model || "";
      $("run-tokens").textContent = u.total_tokens == null ? "—"
        : `${u.prompt_tokens} in + ${u.completion_tokens} out${u.estimated ? " (estimated)" : ""}`;
      showCost(message.cost);
      $("run-latency").textContent = message.latency_ms == null ? "—" : `${message.latency_ms} ms`;
      $("run-ttft").textContent = message.ttft_ms == null ? "—" : `${message.ttft_ms} ms`;
      $("run-error").textContent = message.error || "";
      const cancel = $("run-cancel");
      if (cancel) cancel.remove();
    }
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${box.dataset.ws}`);
    socket.onopen = () => { $("run-connection").textContent = "· live"; };
    socket.onmessage = (event) => render(JSON.parse(event.data));
    socket.onclose = () => {
      $("run-connection").textContent = finished ? "" : "· reconnecting…";
      if (!finished && document.body.contains(box)) setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
    };
  }
  connect(500);
})();
