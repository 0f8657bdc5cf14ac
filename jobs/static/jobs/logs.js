// The job page's log: filter by level and search, over the lines loaded so far (and those the
// poll appends). The full log stays in its own <pre>; the filtered copy is built from text nodes
// only, so log output is never parsed as HTML.
(function () {
  const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };
  const LEVEL_IN_LINE = /\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b/;

  function levelled(text) {
    // A line without a level (a print, a traceback) belongs to the last line that had one.
    let current = LEVELS.INFO;
    return text.split("\n").map((line) => {
      const found = LEVEL_IN_LINE.exec(line.slice(0, 80));
      if (found) current = LEVELS[found[1] === "WARN" ? "WARNING" : found[1]];
      const always = line.startsWith("Job:") || line.startsWith("PlanQK:Job:");
      return { line, level: always ? LEVELS.CRITICAL : current };
    });
  }

  function apply(tools) {
    const source = document.querySelector("pre.log[data-follow]");
    const target = document.querySelector("pre.log-filtered");
    if (!source || !target) return;
    const minimum = LEVELS[tools.querySelector("[data-log-level]").value] || 0;
    const query = tools.querySelector("[data-log-search]").value.trim().toLowerCase();
    const count = tools.querySelector("[data-log-count]");
    if (!minimum && !query) {
      target.hidden = true;
      source.hidden = false;
      count.textContent = "";
      return;
    }
    const lines = levelled(source.textContent.replace(/\n$/, ""));
    const kept = lines.filter((item) => item.level >= minimum && (!query || item.line.toLowerCase().includes(query)));
    target.replaceChildren();
    kept.forEach((item) => {
      if (query) {
        const at = item.line.toLowerCase().indexOf(query);
        const mark = document.createElement("mark");
        mark.textContent = item.line.slice(at, at + query.length);
        target.append(item.line.slice(0, at), mark, item.line.slice(at + query.length) + "\n");
      } else {
        target.append(item.line + "\n");
      }
    });
    count.textContent = `${kept.length} of ${lines.length} lines`;
    source.hidden = true;
    target.hidden = false;
  }

  function setUp() {
    const tools = document.querySelector("[data-log-tools]");
    if (!tools) return;
    tools.hidden = false;
    tools.addEventListener("input", () => apply(tools));
    tools.addEventListener("change", () => apply(tools));
    // New chunks from the poll: filter them too.
    document.addEventListener("htmx:afterSwap", () => apply(tools));
  }
  document.addEventListener("DOMContentLoaded", setUp);
})();
