// Results drawn (jobs/result_views.py chooses the view): histograms, lines and interim results
// with Chart.js (static/vendor/chartjs), tables sortable by a click on their headings. The data
// comes in <script type="application/json"> blocks; without JavaScript the tables and the JSON
// tree still show everything.
(function () {
  const COLORS = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#e53935", "#00897b"];

  function payload(figure) {
    const block = figure.querySelector("script[type='application/json']");
    return block ? JSON.parse(block.textContent) : null;
  }

  function base(extra) {
    return Object.assign(
      { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } } },
      extra,
    );
  }

  const draw = {
    histogram(canvas, data) {
      return new window.Chart(canvas, {
        type: "bar",
        data: { labels: data.labels, datasets: [{ label: "count", data: data.counts, backgroundColor: COLORS[0] }] },
        options: base({
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: (item) => {
                  const p = (100 * item.parsed.y) / data.total;
                  return `${item.parsed.y} of ${data.total} shots: probability ${p.toFixed(2)} %`;
                },
              },
            },
          },
          scales: {
            x: { title: { display: true, text: "measured bitstring" } },
            y: { beginAtZero: true, title: { display: true, text: "count" } },
          },
        }),
      });
    },
    line(canvas, data) {
      return new window.Chart(canvas, {
        type: "line",
        data: { labels: data.labels, datasets: [{ label: "value", data: data.values, borderColor: COLORS[0], pointRadius: 2 }] },
        options: base({ scales: { x: { title: { display: true, text: "index" } } } }),
      });
    },
    interim(canvas, data) {
      const datasets = Object.entries(data.series).map(([name, values], index) => ({
        label: name,
        data: values.map((y, i) => ({ x: data.seconds[i], y })),
        borderColor: COLORS[index % COLORS.length],
        backgroundColor: COLORS[index % COLORS.length],
        pointRadius: 2,
        spanGaps: true,
        yAxisID: index === 0 ? "y" : "y1",
      }));
      const scales = {
        x: { type: "linear", title: { display: true, text: "seconds since the first interim result" } },
        y: { position: "left", title: { display: true, text: datasets[0].label } },
      };
      if (datasets.length > 1) {
        scales.y1 = { position: "right", grid: { drawOnChartArea: false } };
        datasets.slice(2).forEach((set) => (set.yAxisID = "y1"));
      }
      return new window.Chart(canvas, {
        type: "line",
        data: { datasets },
        options: base({ plugins: { legend: { display: true } }, scales }),
      });
    },
  };

  function forgetDetached() {
    // htmx swaps the status area while a job runs: charts of replaced canvases are freed.
    Object.values(window.Chart.instances || {}).forEach((chart) => {
      if (!chart.canvas || !chart.canvas.isConnected) chart.destroy();
    });
  }

  function drawAll() {
    if (!window.Chart) return;
    forgetDetached();
    document.querySelectorAll("[data-result-view]:not([data-drawn])").forEach((figure) => {
      const kind = figure.dataset.resultView;
      const canvas = figure.querySelector("canvas");
      if (!canvas || !draw[kind]) return;
      const data = payload(figure);
      if (!data) return;
      draw[kind](canvas, data);
      figure.dataset.drawn = "true";
    });
  }

  function sortBy(button) {
    const table = button.closest("table");
    const column = Number(button.dataset.sortColumn);
    const ascending = button.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("button.sort").forEach((other) => other.removeAttribute("aria-sort"));
    button.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const key = (row) => {
      const text = row.cells[column] ? row.cells[column].dataset.value : "";
      const number = Number(text);
      return text !== "" && !Number.isNaN(number) ? number : text;
    };
    rows.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("table.sortable button.sort");
    if (button) sortBy(button);
  });
  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
