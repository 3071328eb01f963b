// The playground: sends commands over the assistant's WebSocket and streams
// answers into bubbles. Deltas carry offsets, so a snapshot and a delta that
// overlap are merged without repeating text.
(function () {
  const root = document.getElementById("playground");
  if (!root || root.dataset.bound) return;
  root.dataset.bound = "1";
  const $ = (id) => document.getElementById(id);
  const bubbles = {};   // run id -> {div, body, meta}
  let conversation = root.dataset.conversation ? Number(root.dataset.conversation) : null;
  let pending = null;   // the message sent, until the server starts its turn or refuses it
  let activeRun = null;
  const comparing = new Set();   // compare runs not finished yet
  let compareRequested = false;
  let socket;

  const names = (list) => (list || "").split(",").filter(Boolean);
  const busy = () => pending !== null || activeRun !== null;

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

  // Cost as the usage page writes it; an unpriced model is recorded at $0, which is not free.
  function costElement(cost) {
    const span = document.createElement("span");
    span.className = "cost";
    span.dataset.testid = "run-cost";
    if (!cost) {
      span.textContent = "—";
    } else if (cost.priced) {
      span.textContent = `$${cost.amount}`;
    } else {
      span.textContent = cost.amount === "0" ? "unpriced" : `$${cost.amount} + unpriced`;
      span.title = "No price is set for this model: the usage page records it at $0, which is not free.";
    }
    return span;
  }

  function setButtons() {
    $("send").disabled = busy();
    $("stop").disabled = activeRun === null;
    const compareButton = $("compare-send");
    if (compareButton) compareButton.disabled = compareRequested || comparing.size > 0;
  }

  function finish(message) {
    const target = bubbles[message.run_id];
    if (!target || target.div.dataset.status) return;   // the same end can arrive twice
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
    const tokens = u.total_tokens == null ? "— tokens" : `${u.total_tokens} tokens${u.estimated ? " (est.)" : ""}`;
    target.meta.textContent = `${message.model}${version} · ${tokens} · ${message.latency_ms ?? "—"} ms · `;
    target.meta.appendChild(costElement(message.cost));
    if (message.status !== "succeeded") target.meta.append(` · ${message.status}`);
    if (message.status === "failed") {
      const error = document.createElement("p");
      error.className = "error";
      error.dataset.testid = "run-error";
      error.setAttribute("role", "alert");
      error.textContent = message.error || "The run failed.";
      target.meta.appendChild(error);
    }
    target.div.dataset.status = message.status;
    if (message.run_id === activeRun) activeRun = null;
    comparing.delete(message.run_id);
    setButtons();
  }

  function markMissing(missing) {
    document.querySelectorAll("[data-var]").forEach((input) => {
      if (missing.includes(input.dataset.var)) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    });
  }

  function refused(message) {
    const where = message.action === "compare" ? $("compare-error") : $("pg-error");
    (where || $("pg-error")).textContent = message.message;
    if (message.code === "missing_variable" && message.param) {
      markMissing([message.param.replace(/^variables\./, "")]);
    }
    if (message.action === "send") pending = null;   // the message stays in its box
    if (message.action === "compare") compareRequested = false;
    setButtons();
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    if (message.type === "error") {
      refused(message);
    } else if (message.type === "turn") {
      conversation = message.conversation;
      if (pending !== null) {
        bubble("user", pending);
        if ($("message").value === pending) $("message").value = "";
        pending = null;
      }
      activeRun = message.run_id;
      bubbles[message.run_id] = bubble("assistant", "");
      setButtons();
    } else if (message.type === "compare") {
      compareRequested = false;
      const box = $("compare");
      box.innerHTML = "";
      message.runs.forEach((r) => {
        const column = document.createElement("div");
        const title = document.createElement("h3");
        title.textContent = `v${r.prompt_version}`;
        column.appendChild(title);
        column.dataset.testid = `compare-v${r.prompt_version}`;
        box.appendChild(column);
        bubbles[r.run_id] = bubble("assistant", "", column);
        comparing.add(r.run_id);
      });
      setButtons();
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
      // A new socket does not follow the old one's runs: don't wait on them forever.
      if (busy() || compareRequested || comparing.size) {
        pending = activeRun = null;
        compareRequested = false;
        comparing.clear();
        $("pg-error").textContent = "The connection dropped; reload the conversation to see the answer.";
        setButtons();
      }
      setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
    };
  }

  function variables() {
    const values = {};
    document.querySelectorAll("[data-var]").forEach((input) => { values[input.dataset.var] = input.value; });
    return values;
  }

  // The same words the API uses when it refuses: "Missing variable(s): a, b".
  function missingVariables(required) {
    const values = variables();
    const missing = required.filter((name) => !(values[name] || "").trim());
    markMissing(missing);
    if (!missing.length) return "";
    return `Missing ${missing.length === 1 ? "variable" : "variables"}: ${missing.join(", ")}`;
  }

  function command(payload, errorBox) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      errorBox.textContent = "Not connected to the server yet; try again in a moment.";
      return false;
    }
    socket.send(JSON.stringify(payload));
    return true;
  }

  $("send-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy()) return;
    const error = $("pg-error");
    const content = $("message").value;
    if (!content.trim()) {
      error.textContent = "Write a message first.";
      $("message").focus();
      return;
    }
    const draft = $("draft").value.trim();
    // Unsaved instructions have their own placeholders: the server checks those.
    const missing = draft ? "" : missingVariables(names(root.dataset.variables));
    if (missing) {
      error.textContent = missing;
      return;
    }
    error.textContent = "";
    const sent = command({
      action: "send", conversation, content, variables: variables(), draft: draft || null,
    }, error);
    if (!sent) return;
    pending = content;
    setButtons();
  });

  // Ctrl+Enter (Cmd+Enter on a Mac) sends from the message and draft boxes, where Enter
  // is a new line; Enter sends from the one-line variable boxes.
  const form = $("send-form");
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.isComposing) return;
    const multiline = event.target.tagName === "TEXTAREA";
    if (multiline && !(event.ctrlKey || event.metaKey)) return;
    if (!multiline && event.target.tagName !== "INPUT") return;
    event.preventDefault();
    form.requestSubmit();
  });
  document.querySelectorAll("[data-var]").forEach((input) => {
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  });

  $("stop").addEventListener("click", () => {
    if (activeRun) command({ action: "stop", run: activeRun }, $("pg-error"));
  });
  $("new-conversation").addEventListener("click", () => {
    conversation = null;
    $("chat").innerHTML = "";
  });

  const compare = $("compare-form");
  if (compare) {
    const chosen = (id) => $(id).selectedOptions[0];
    compare.addEventListener("submit", (event) => {
      event.preventDefault();
      if (compareRequested || comparing.size) return;
      const error = $("compare-error");
      const content = $("compare-message").value;
      if (!content.trim()) {
        error.textContent = "Write a message to compare.";
        return;
      }
      const a = chosen("compare-a"), b = chosen("compare-b");
      const required = [...new Set([...names(a.dataset.variables), ...names(b.dataset.variables)])];
      const missing = missingVariables(required);
      if (missing) {
        error.textContent = missing;
        return;
      }
      error.textContent = "";
      const sent = command({
        action: "compare", content, variables: variables(),
        versions: [Number(a.value), Number(b.value)],
      }, error);
      if (!sent) return;
      compareRequested = true;
      setButtons();
    });
  }
  connect(500);
})();
