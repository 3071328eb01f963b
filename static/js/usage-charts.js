// Draws the usage page's charts from the JSON the server rendered next to them.
// Runs again after every boosted navigation (htmx re-inserts the script), so it
// replaces charts it drew before; waits for the vendored Chart.js when the two
// scripts arrive out of order.
(function () {
  function draw() {
    const source = document.getElementById("usage-chart-data");
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const base = {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true } },
    };
    function chart(id, config) {
      const canvas = document.getElementById(id);
      if (!canvas) return;
      const old = window.Chart.getChart(canvas);
      if (old) old.destroy();
      new window.Chart(canvas, { ...config, options: { ...base, ...(config.options || {}) } });
      canvas.dataset.drawn = "true";
    }
    const labels = data.labels;
    chart("chart-requests", {
      type: "bar",
      data: { labels, datasets: [
        { label: "Requests", data: data.requests, backgroundColor: "#3451b2" },
        { label: "Errors", data: data.errors, backgroundColor: "#b42318" },
      ] },
    });
    chart("chart-tokens", {
      type: "bar",
      data: { labels, datasets: [
        { label: "Prompt", data: data.prompt_tokens, backgroundColor: "#6172f3" },
        { label: "Completion", data: data.completion_tokens, backgroundColor: "#9fb1f7" },
      ] },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    chart("chart-cost", {
      type: "line",
      data: { labels, datasets: [
        { label: "Cost", data: data.cost, borderColor: "#067647", backgroundColor: "#067647" },
      ] },
    });
    chart("chart-latency", {
      type: "line",
      data: { labels, datasets: [
        { label: "p50", data: data.p50, borderColor: "#3451b2", backgroundColor: "#3451b2", spanGaps: true },
        { label: "p95", data: data.p95, borderColor: "#dc6803", backgroundColor: "#dc6803", spanGaps: true },
      ] },
    });
  }

  function whenReady(tries) {
    if (window.Chart) return draw();
    if (tries > 200) return;
    setTimeout(function () { whenReady(tries + 1); }, 25);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { whenReady(0); });
  } else {
    whenReady(0);
  }
})();
