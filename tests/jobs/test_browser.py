"""Jobs in a real browser against a real Celery worker and the real local runtime."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from jobs.admission import execution_admit
from jobs.models import Job, JobStatus
from tests.conftest import login
from tests.jobs.conftest import log_text, wait_final, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_sum_job_from_create_job_to_its_result_and_logs(browser_page, live_server, celery_worker, user, make_version):
    version = make_version(user, "sum", title="Sum")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/")
    page.click("[data-testid=create-job] >> nth=0")
    page.wait_for_load_state()  # htmx (a deferred script) listens for the change only once loaded
    page.select_option("[data-testid=service-select]", str(version.service_id))
    # Choosing the service fills in the example of its API spec: the documented input.
    expect(page.locator("#id_data")).to_have_value(re.compile(r"0\.69"))
    assert '"round_off": false' in page.input_value("#id_params")
    # Each way of giving the parameters shows its own panel; JSON is the one used here.
    params_pool = page.locator(".mode-panel[data-mode='params_mode:datapool']")
    assert params_pool.is_hidden()
    page.check("input[name=params_mode][value=datapool]")
    params_pool.wait_for(state="visible")
    assert page.locator("#id_params").is_hidden()
    page.check("input[name=params_mode][value=json]")
    params_pool.wait_for(state="hidden")
    page.click("[data-testid=run-job]")

    page.wait_for_selector("[data-testid=job-status-area][data-status=SUCCEEDED]", timeout=60_000)
    assert '"sum": 420.69' in page.text_content("[data-testid=job-result]")
    assert "420.69" in page.inner_text("[data-testid=result-tree]")  # drawn as a JSON tree
    expect(page.locator("[data-testid=job-log]")).to_contain_text("summing 5 values")
    assert "0.69" in page.inner_text("[data-testid=job-data]")
    # The README's picture of the portal is this page, as a user sees it.
    page.screenshot(path=str(DOCS / "screenshot-job.png"), full_page=True)
    job = Job.objects.get()
    assert job.result == {"sum": 420.69}
    assert job.params == {"round_off": False}

    with page.expect_download() as download:
        page.click("[data-testid=download-result]")
    assert download.value.suggested_filename == "result.json"

    page.goto(f"{live_server.url}/jobs/")
    assert page.locator("[data-testid=job-row] [data-status=SUCCEEDED]").count() == 1


def test_cancel_a_slow_job_while_it_runs(browser_page, live_server, celery_worker, user, make_version):
    version = make_version(user, "slow")
    job = execution_admit(service_version=version, owner=user, params={"steps": 120, "sleep": 0.5})
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_selector("[data-testid=job-status-area][data-status=RUNNING]", timeout=60_000)
    expect(page.locator("[data-testid=job-log]")).to_contain_text("step 1 of 120 done", timeout=30_000)
    page.click("[data-testid=cancel-job]")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("[data-testid=job-status-area][data-status=CANCELLED]", timeout=30_000)
    assert "Cancelled while it was running" in page.inner_text("[data-testid=job-status-area]")

    job = wait_final(job)
    assert job.status == JobStatus.CANCELLED
    assert "step 120 of 120" not in log_text(job)
    assert job.result is None
    # The execution is gone, not just forgotten.
    from jobs.runtime_factory import get_runtime

    runtime = get_runtime(job.runtime)
    assert not runtime.poll(runtime.execution_handle(job.runtime_handle)).running


def test_failing_job_shows_its_code_and_detail(browser_page, live_server, celery_worker, user, make_version):
    job = execution_admit(service_version=make_version(user, "failing"), owner=user)
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.wait_for_selector("[data-testid=job-status-area][data-status=FAILED]", timeout=60_000)
    assert page.inner_text("[data-testid=job-error-code]") == "SAMPLE_FAILURE"
    assert "always fails" in page.inner_text("[data-testid=job-error-detail]")
    expect(page.locator("[data-testid=job-log]")).to_contain_text("on purpose")


def test_run_again_and_the_jobs_pages_on_a_phone(browser_page, live_server, celery_worker, user, make_version):
    job = execution_admit(service_version=make_version(user, "sum"), owner=user, data={"values": [1, 2]})
    wait_final(job)
    page = browser_page
    login(page, live_server, user)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/jobs/", f"/jobs/{job.pk}/", "/jobs/new/"):
        page.goto(f"{live_server.url}{path}")
        # Nothing wider than the screen: tables scroll inside their wrapper.
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), path
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.click("[data-testid=run-again]")
    page.wait_for_url(re.compile(r"/jobs/new/\?from="))
    assert '"values"' in page.input_value("#id_data")
    page.click("[data-testid=run-job]")
    page.wait_for_selector("[data-testid=job-status-area][data-status=SUCCEEDED]", timeout=60_000)
    assert '"sum": 3' in page.text_content("[data-testid=job-result]")
    wait_for(lambda: Job.objects.count() == 2)
