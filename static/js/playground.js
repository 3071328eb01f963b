// The playground: sends commands over the assistant's WebSocket and streams
// answers into bubbles. Deltas carry offsets, so a snapshot and a delta that
// overlap are merged without repeating text.
(function () {
  const root = document.getElementById("playground");
  if (!root || root.dataset.bound) return;
  root.dataset.bound = "1";
  const $ = (id) => document.getElementById(id);
  const bubbles = {};   // run id -> {text element, meta element}
  let conversation = root.dataset.conversation ? Number(root.dataset.conversation) : null;
  let activeRun = null;
  let socket;

  function bubble(role, text, container) {
    const div = document.createElement("div");
    div.className = `bubble ${role}`;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text || "";
    div.appendChild(body);
    const meta = document.createElement("div");
    meta.className = "meta";
    div.appendChild(meta);
    (container || $("chat")).appendChild(div);
    return { div, body, meta };
  }

  function appendDelta(message) {
    const target = bubbles[message.run_id];
    if (!target) return;
    const have = target.body.textContent.length;
    const end = message.offset + message.delta.length;
    if (end > have && message.offset <= have) {
      target.body.textContent += message.delta.slice(have - message.offset);
    }
    target.div.dataset.chunks = String(Number(target.div.dataset.chunks || 0) + 1);
  }

  function finish(message) {
    const target = bubbles[message.run_id];
    if (!target) return;
    const u = message.usage || {};
    if (message.output) target.body.textContent = message.output;
    (message.tool_calls || []).forEach((call) => {
      // Executing tools is the caller's job; the playground shows what the model asked for.
      const line = document.createElement("div");
      line.className = "tool-call";
      line.textContent = `tool call: ${call.function.name}(${call.function.arguments})`;
      target.div.insertBefore(line, target.meta);
    });
    const version = message.prompt_version ? ` · prompt v${message.prompt_version}` : "";
    const tokens = u.total_tokens == null ? "—" : `${u.total_tokens} tokens${u.estimated ? " (est.)" : ""}`;
    target.meta.textContent = `${message.model}${version} · ${tokens} · ${message.latency_ms ?? "—"} ms · cost —` +
      (message.status !== "succeeded" ? ` · ${message.status}${message.error ? ": " + message.error : ""}` : "");
    target.div.dataset.status = message.status;
    if (message.run_id === activeRun) {
      activeRun = null;
      $("stop").disabled = true;
      $("send").disabled = false;
    }
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    if (message.type === "error") {
      $("pg-error").textContent = message.message;
      $("send").disabled = false;
    } else if (message.type === "turn") {
      conversation = message.conversation;
      activeRun = message.run_id;
      bubbles[message.run_id] = bubble("assistant", "");
      $("stop").disabled = false;
    } else if (message.type === "compare") {
      const box = $("compare");
      box.innerHTML = "";
      message.runs.forEach((r) => {
        const column = document.createElement("div");
        column.innerHTML = `<h3>v${r.prompt_version}</h3>`;
        column.dataset.testid = `compare-v${r.prompt_version}`;
        box.appendChild(column);
        bubbles[r.run_id] = bubble("assistant", "", column);
      });
    } else if (message.type === "run.delta") {
      appendDelta(message);
    } else if (message.type === "run.done") {
      finish(message);
    }
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.ws}`);
    socket.onmessage = onMessage;
    socket.onopen = () => { root.dataset.connected = "1"; };
    socket.onclose = () => {
      root.dataset.connected = "";
      if (!document.body.contains(root)) return;  // the page was swapped away
      setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
    };
  }

  function variables() {
    const values = {};
    document.querySelectorAll("[data-var]").forEach((input) => { values[input.dataset.var] = input.value; });
    return values;
  }

  $("send-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const content = $("message").value;
    if (!content.trim()) return;
    $("pg-error").textContent = "";
    bubble("user", content);
    const draft = $("draft").value.trim();
    socket.send(JSON.stringify({
      action: "send", conversation, content, variables: variables(), draft: draft || null,
    }));
    $("message").value = "";
    $("send").disabled = true;
  });
  $("stop").addEventListener("click", () => {
    if (activeRun) socket.send(JSON.stringify({ action: "stop", run: activeRun }));
  });
  $("new-conversation").addEventListener("click", () => {
    conversation = null;
    $("chat").innerHTML = "";
  });
  const compare = $("compare-form");
  if (compare) {
    compare.addEventListener("submit", (event) => {
      event.preventDefault();
      socket.send(JSON.stringify({
        action: "compare", content: $("compare-message").value, variables: variables(),
        versions: [Number($("compare-a").value), Number($("compare-b").value)],
      }));
    });
  }
  connect(500);
})();
