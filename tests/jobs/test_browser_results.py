"""Schema-first jobs in a real browser (real worker, real local runtime, the strict CSP):
the Bell sample's form and histogram, the QUBO sample's table, interim results, log filters."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from jobs.admission import execution_admit
from jobs.models import Job
from tests.conftest import login
from tests.jobs.conftest import wait_final

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"
QUBO = {"qubo": {"0,0": -1, "1,1": -1, "2,2": -1, "0,1": 2, "1,2": 2}}


def _watch(page) -> list[str]:
    """Console errors, CSP violations and uncaught exceptions of the page."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


def test_bell_form_refuses_a_bad_value_then_the_job_shows_a_histogram(
    browser_page, live_server, celery_worker, user, make_version
):
    version = make_version(user, "qiskit_bell", title="Qiskit Bell pair")
    page = browser_page
    problems = _watch(page)
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/new/?service={version.service_id}")
    # The fields of the spec's params schema, with their types, limits and the example's values.
    shots = page.locator("[name='sf:params.shots']")
    assert shots.is_visible()
    assert shots.get_attribute("type") == "number"
    assert shots.get_attribute("min") == "1"
    assert shots.input_value() == "1024"
    assert page.locator("[name='sf:params.backend']").input_value() == "aer_simulator"
    assert page.locator("[data-testid='field-params.seed']").is_visible()
    assert "Simulator seed" in page.inner_text("[data-testid=params-form]")

    # A bad value: the browser refuses it on the field, nothing is sent.
    shots.fill("0")
    page.click("[data-testid=run-job]")
    assert shots.evaluate("el => el.validity.rangeUnderflow")
    assert shots.evaluate("el => el.validationMessage")
    assert "/jobs/new/" in page.url
    shots.fill("2.5")
    page.click("[data-testid=run-job]")
    assert shots.evaluate("el => el.validity.stepMismatch")
    assert Job.objects.count() == 0

    shots.fill("2000")
    page.fill("[name='sf:params.seed']", "7")
    page.click("[data-testid=run-job]")
    page.wait_for_selector("[data-testid=job-status-area][data-status=SUCCEEDED]", timeout=90_000)
    job = Job.objects.get()
    assert job.params == {"shots": 2000, "seed": 7, "backend": "aer_simulator"}

    # The counts drawn as a histogram: sorted bitstrings, the probability in the tooltip.
    page.wait_for_selector("[data-testid=result-histogram][data-drawn]")
    chart = page.evaluate(
        """() => {
          const chart = Chart.getChart(document.querySelector('[data-testid=result-histogram] canvas'));
          const tip = chart.options.plugins.tooltip.callbacks.label({parsed: {y: chart.data.datasets[0].data[0]}});
          return {labels: chart.data.labels, total: chart.data.datasets[0].data.reduce((a, b) => a + b, 0), tip};
        }"""
    )
    assert chart["labels"] == ["00", "11"]
    assert chart["total"] == 2000
    assert "probability" in chart["tip"]
    # The raw JSON is one click away.
    assert not page.locator("[data-testid=job-result]").is_visible()
    page.click("[data-testid=show-raw-result]")
    assert '"counts"' in page.inner_text("[data-testid=job-result]")
    page.click("[data-testid=show-raw-result]")
    page.locator("[data-testid=job-status-area]").screenshot(path=str(DOCS / "screenshot-histogram.png"))

    # The log: its own line, no transpiler passes; the level filter and search work on it.
    expect(page.locator("[data-testid=job-log]")).to_contain_text("running a Bell pair")
    assert "qiskit.passmanager" not in page.inner_text("[data-testid=job-log]")
    page.select_option("[data-testid=log-level]", "WARNING")
    assert page.locator("[data-testid=job-log]").is_hidden()
    filtered = page.inner_text("[data-testid=job-log-filtered]")
    assert "running a Bell pair" not in filtered
    assert "Job:ResultResponse" in filtered  # the final line always shows
    page.select_option("[data-testid=log-level]", "")
    page.fill("[data-testid=log-search]", "bell pair")
    assert "running a Bell pair" in page.inner_text("[data-testid=job-log-filtered]")
    assert page.locator("[data-testid=job-log-filtered] mark").count() == 1
    assert " of " in page.inner_text("[data-testid=log-count]")
    page.fill("[data-testid=log-search]", "")
    assert page.locator("[data-testid=job-log]").is_visible()
    assert problems == []


def test_qubo_result_is_a_sortable_table_and_interim_results_a_chart(
    browser_page, live_server, celery_worker, user, make_version
):
    qubo = execution_admit(service_version=make_version(user, "dwave_qubo"), owner=user, data=QUBO)
    slow = execution_admit(service_version=make_version(user, "slow"), owner=user, params={"steps": 4, "sleep": 0.3})
    page = browser_page
    problems = _watch(page)
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/new/?service={qubo.service_id}")
    assert page.locator("[name='sf:data.qubo']").evaluate("el => el.tagName") == "TEXTAREA"
    assert page.locator("[name='sf:params.num_reads']").get_attribute("max") == "100000"

    page.goto(f"{live_server.url}/jobs/{qubo.pk}/")
    page.wait_for_selector("[data-testid=job-status-area][data-status=SUCCEEDED]", timeout=90_000)
    table = page.locator("[data-testid=result-table] table")
    assert table.is_visible()
    headings = table.locator("thead th").all_inner_texts()
    assert headings[0].strip() == "energy"
    assert [h.strip() for h in headings[1:4]] == ["x0", "x1", "x2"]
    assert table.locator("tbody tr").first.locator("td").first.inner_text() == "-2.0"
    table.locator("button.sort").first.click()
    assert table.locator("button.sort").first.get_attribute("aria-sort") == "ascending"
    page.screenshot(path=str(DOCS / "screenshot-qubo-table.png"), full_page=True)

    wait_final(slow)
    page.goto(f"{live_server.url}/jobs/{slow.pk}/")
    page.wait_for_selector("[data-testid=interim-chart][data-drawn]")
    series = page.evaluate(
        "() => Chart.getChart(document.querySelector('[data-testid=interim-chart] canvas')).data.datasets"
        ".map(d => d.label)"
    )
    assert "progress" in series
    assert problems == []
