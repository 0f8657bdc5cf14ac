// Renders the formulas that algorithms/rendering.py marked (<span class="math">) with KaTeX.
// KaTeX builds DOM nodes and sets styles through the DOM, which the Content-Security-Policy allows.
(function () {
  function render(root) {
    if (!window.katex) return;
    root.querySelectorAll(".math[data-math]:not([data-rendered])").forEach(function (node) {
      var tex = node.textContent;
      try {
        window.katex.render(tex, node, { displayMode: node.dataset.math === "display", throwOnError: false, trust: false });
        node.dataset.rendered = "true";
      } catch (e) {
        node.textContent = tex;
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSwap", function (event) { render(event.target); });
})();
