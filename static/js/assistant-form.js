// The assistant form: the model list follows the chosen backend. Each model option
// names its backend (data-backend); options of other backends are hidden, and the
// "Model name" box shows only when the backend lists no models ("Other").
(function () {
  function wire(form) {
    const backend = form.querySelector("select[name=backend]");
    const model = form.querySelector("select[data-model-select]");
    const other = form.querySelector("input[name=model_other]");
    if (!backend || !model) return;
    const otherField = other ? other.closest(".field") : null;

    function sync(keepChoice) {
      const id = backend.value;
      let firstVisible = null;
      for (const group of model.querySelectorAll("optgroup")) {
        const options = [...group.querySelectorAll("option")];
        const mine = options.some((o) => o.dataset.backend === id);
        group.hidden = !mine;
        group.disabled = !mine;
        if (mine && !firstVisible) firstVisible = options[0];
      }
      const chosen = model.selectedOptions[0];
      if (!keepChoice || !chosen || chosen.dataset.backend !== id) {
        if (firstVisible) firstVisible.selected = true;
      }
      const wantsName = model.value === "__other__";
      if (otherField) otherField.style.display = wantsName ? "" : "none";
      if (other) other.required = wantsName;
    }

    backend.addEventListener("change", () => sync(false));
    model.addEventListener("change", () => sync(true));
    sync(true);
  }

  function wireAll() {
    document.querySelectorAll("form[data-assistant-form]").forEach(wire);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wireAll);
  } else {
    wireAll();
  }
  document.addEventListener("htmx:load", wireAll);
})();
