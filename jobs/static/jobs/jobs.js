// Create Job: show the panel of the chosen input mode, add key-value rows, and let the browser
// check the form's fields (the page works without this script: then the server checks them).
(function () {
  function sync(form) {
    form.querySelectorAll(".mode-panel[data-mode]").forEach((panel) => {
      const [name, value] = panel.dataset.mode.split(":");
      const checked = form.querySelector(`input[name="${name}"]:checked`);
      panel.hidden = !checked || checked.value !== value;
      // A hidden panel's fields are neither checked by the browser nor sent.
      panel.querySelectorAll("input, select, textarea").forEach((field) => {
        field.disabled = panel.hidden;
      });
    });
  }
  function setUp(root) {
    root.querySelectorAll(".job-form").forEach((form) => {
      form.noValidate = false; // the schema fields' min, max, step, pattern and required apply
      sync(form);
    });
  }
  document.addEventListener("change", (event) => {
    const form = event.target.closest(".job-form");
    if (form && event.target.matches("input[type=radio]")) sync(form);
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-add-kv-row]");
    if (!button) return;
    const rows = document.getElementById("kv-rows");
    const last = rows.lastElementChild;
    const row = last.cloneNode(true);
    row.querySelectorAll("input").forEach((input) => (input.value = ""));
    rows.appendChild(row);
    row.querySelector("input").focus();
  });
  document.addEventListener("DOMContentLoaded", () => setUp(document));
  // Choosing another service swaps in its input sections (htmx, out of band).
  document.addEventListener("htmx:afterSettle", () => setUp(document));
  document.addEventListener("htmx:oobAfterSwap", () => setUp(document));
})();
