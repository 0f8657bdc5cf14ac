// Create Job: show the panel of the chosen input mode (carrying the values over between the form
// and the JSON box), add key-value rows, and let the browser check the form's fields (the page
// works without this script: then every panel shows and the server checks them).
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
  // The mode each input was in, so a switch knows where the values come from.
  const shown = new WeakMap();
  function remember(form) {
    const modes = {};
    form.querySelectorAll("input[type=radio][name$=_mode]:checked").forEach((radio) => {
      modes[radio.name] = radio.value;
    });
    shown.set(form, modes);
  }
  function setUp(root) {
    root.querySelectorAll(".job-form").forEach((form) => {
      form.noValidate = false; // the schema fields' min, max, step, pattern and required apply
      sync(form);
      remember(form);
    });
  }
  function say(form, input, message) {
    const box = form.querySelector(`[data-convert-error="${input}"]`);
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }
  // Switching an input between its form and the JSON box carries the values over. The server
  // reads and fills them (the same code as a submitted form), so both sides agree on every type.
  async function carryOver(form, input, from, to) {
    const body = new FormData(form); // taken before sync(): the panel left is still enabled
    body.set("convert", input);
    body.set("to", to);
    // Until the answer arrives the panel shown holds stale values: keep it from being edited (what
    // is typed there would be overwritten) and tell assistive technology the form is updating.
    const target = form.querySelector(`.mode-panel[data-mode="${input}_mode:${to}"]`);
    if (target) target.inert = true;
    form.setAttribute("aria-busy", "true");
    let answer = null;
    try {
      const response = await fetch(form.action || window.location.href, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      answer = await response.json();
    } catch (error) {
      answer = { detail: "The values could not be carried over; check them in this mode." };
    }
    if (answer.text !== undefined) {
      form.querySelector(`textarea[name="${input}"]`).value = answer.text;
    } else if (answer.html !== undefined) {
      const fields = form.querySelector(`[data-fields-of="${input}"]`);
      fields.innerHTML = answer.html;
      sync(form); // the new fields get the panel's enabled state
    } else {
      // Nothing carried over: back to where the values are, with the reason.
      const back = form.querySelector(`input[name="${input}_mode"][value="${from}"]`);
      back.checked = true;
      sync(form);
      remember(form);
    }
    say(form, input, answer.detail);
    if (target) target.inert = false;
    form.removeAttribute("aria-busy");
  }
  document.addEventListener("change", (event) => {
    const form = event.target.closest(".job-form");
    if (!form || !event.target.matches("input[type=radio]")) return;
    const radio = event.target;
    const from = (shown.get(form) || {})[radio.name];
    const input = radio.name.replace(/_mode$/, "");
    const modes = ["form", "json"];
    if (radio.name.endsWith("_mode") && from !== radio.value && modes.includes(from) && modes.includes(radio.value)) {
      carryOver(form, input, from, radio.value);
    } else if (radio.name.endsWith("_mode")) {
      say(form, input, "");
    }
    sync(form);
    remember(form);
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
