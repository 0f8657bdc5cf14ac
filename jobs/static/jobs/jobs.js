// Create Job: show the panel of the chosen input mode, and add key-value rows.
(function () {
  function sync(form) {
    form.querySelectorAll(".mode-panel[data-mode]").forEach((panel) => {
      const [name, value] = panel.dataset.mode.split(":");
      const checked = form.querySelector(`input[name="${name}"]:checked`);
      panel.hidden = !checked || checked.value !== value;
    });
  }
  document.addEventListener("change", (event) => {
    const form = event.target.closest(".job-form");
    if (form) sync(form);
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
  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll(".job-form").forEach(sync));
})();
