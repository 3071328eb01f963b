// Copy buttons: <button data-copy="#source" data-copy-status="status-id">. The Clipboard
// API where the page may use it (https, localhost); otherwise, or when it is refused,
// the text is selected so Ctrl+C / Cmd+C copies it. Bound once on the document, so it
// keeps working on pages htmx swaps in.
(function () {
  "use strict";
  if (window.portalCopyBound) return;
  window.portalCopyBound = true;

  function textOf(el) {
    return el.tagName === "INPUT" || el.tagName === "TEXTAREA" ? el.value : el.textContent;
  }
  function select(el) {
    if (el.select) { el.focus(); el.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(el);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function say(button, text) {
    var status = document.getElementById(button.dataset.copyStatus);
    if (!status) return;
    status.textContent = text;
    clearTimeout(status.portalTimer);
    status.portalTimer = setTimeout(function () { status.textContent = ""; }, 4000);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source) return;
    function fallback() {
      select(source);
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      say(button, copied ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(textOf(source)).then(function () { say(button, "Copied"); }, fallback);
    } else {
      fallback();
    }
  });
})();
