// Small progressive enhancements; every page works without them.
// Forms with data-confirm ask first (no inline handlers: the Content-Security-Policy forbids them).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source ? (source.value ?? source.textContent).trim() : "";
  const done = () => { const old = button.textContent; button.textContent = "Copied"; setTimeout(() => (button.textContent = old), 1500); };
  // The Clipboard API needs a secure context and permission; a selection copy works on plain http.
  const fallback = () => {
    const area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    const ok = document.execCommand("copy"); area.remove();
    if (ok) { done(); } else { button.textContent = "Select and copy by hand"; }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else {
    fallback();
  }
});
// Keep live logs scrolled to the end while they grow, unless the reader scrolled up.
document.addEventListener("htmx:afterSwap", () => {
  document.querySelectorAll("pre.log[data-follow]").forEach((pre) => {
    if (pre.scrollHeight - pre.scrollTop - pre.clientHeight < 120) pre.scrollTop = pre.scrollHeight;
  });
});
// Format local times: <time data-local datetime="ISO">.
function localTimes(root) {
  root.querySelectorAll("time[data-local]").forEach((el) => {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) el.textContent = d.toLocaleString();
  });
}
document.addEventListener("DOMContentLoaded", () => localTimes(document));
document.addEventListener("htmx:afterSwap", (e) => localTimes(e.target));
