"""A new user, in a real browser: open an algorithm, Create Service next to an implementation's
file, wait for the real build, run it from Create Job with its example input, see the result."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from algorithms.models import Implementation
from jobs.models import Job
from payments.testing import add_test_card
from tests.conftest import login, make_user

DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_media")]


def test_new_user_runs_a_community_implementation_in_three_clicks(celery_worker, browser_page, live_server):
    from algorithms.demo import seed_demo

    seed_demo(make_user("community@example.com"), io.StringIO())
    newcomer = make_user("newcomer@example.com")
    add_test_card(newcomer)  # creating a service needs a card, as on PlanQK
    page = browser_page
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, live_server, newcomer)

    page.goto(f"{live_server.url}/algorithms/")
    page.fill("input[name=q]", "Bell")
    page.click("form[data-testid=algorithm-filters] button")
    assert page.locator("[data-testid=algorithm-card]").count() == 1
    page.click("[data-testid=algorithm-card][data-name='Bell state preparation'] a")
    page.wait_for_selector("[data-testid=algorithm-name]")
    # The formula is rendered by KaTeX from our own static files.
    page.wait_for_selector("[data-testid=description] .katex")
    assert "<script" not in page.inner_html("[data-testid=description]")
    # The README's picture of the catalogue is this page.
    page.screenshot(path=str(DOCS / "screenshot-algorithm.png"), full_page=True)

    row = page.locator("[data-testid=implementation-row][data-name='Bell pair on Qiskit Aer']")
    row.locator("[data-testid=create-service]").click()  # click 1
    page.wait_for_selector("[data-testid=build-log]")
    # The build log streams while the worker builds; Create Job opens by itself once READY.
    page.wait_for_url(re.compile(r"/jobs/new/\?service="), timeout=900_000)
    page.wait_for_load_state()
    service_id = page.url.split("service=")[1]
    assert page.input_value("[data-testid=service-select]") == service_id
    # The chosen service's API spec is at the bottom of the page.
    assert "Qiskit Bell pair" in page.inner_text("[data-testid=job-api-spec]")
    page.click("[data-testid=run-job]")  # click 2

    page.wait_for_selector("[data-testid=job-status-area][data-status=SUCCEEDED]", timeout=300_000)
    # The counts are drawn (a histogram); the raw JSON is one click away.
    page.wait_for_selector("[data-testid=result-histogram]")
    page.click("[data-testid=show-raw-result]")
    result = page.inner_text("[data-testid=job-result]")
    assert '"counts"' in result
    assert '"00"' in result
    assert '"11"' in result
    assert '"01"' not in result
    job = Job.objects.get(owner=newcomer)
    assert set(job.result["counts"]) == {"00", "11"}

    # The implementation says how many services and jobs came from it.
    implementation = Implementation.objects.get(name="Bell pair on Qiskit Aer")
    page.goto(f"{live_server.url}/algorithms/implementations/{implementation.pk}/")
    assert page.inner_text("[data-testid=usage-services]") == "1"
    assert page.inner_text("[data-testid=usage-jobs]") == "1"
    # Create Service again offers the service made before instead of a second one.
    assert page.locator("[data-testid=use-service]").count() == 1
    assert violations == []


def test_create_the_service_and_run_from_create_job(celery_worker, browser_page, live_server):
    """Item 4: Create Job offers the implementations, one step from a file to a selected service."""
    from tests.algorithms.conftest import make_algorithm, make_implementation

    author = make_user("author@example.com")
    make_implementation(author, make_algorithm(author), name="sum for all", visibility="PUBLIC")
    newcomer = make_user("newcomer@example.com")
    add_test_card(newcomer)
    page = browser_page
    login(page, live_server, newcomer)
    page.goto(f"{live_server.url}/jobs/new/")
    block = page.locator("[data-testid=job-implementations]")
    assert block.get_attribute("open") is not None  # no services yet: the implementations are the way in
    block.locator("[data-testid=job-implementation-row][data-name='sum for all'] [data-testid=create-service]").click()
    page.wait_for_url(re.compile(r"/jobs/new/\?service="), timeout=300_000)
    page.wait_for_load_state()
    page.click("[data-testid=run-job]")
    page.wait_for_selector("[data-testid=job-status-area][data-status=SUCCEEDED]", timeout=120_000)
    page.locator("[data-testid=show-raw-result]").click()
    assert '"sum": 420.69' in page.inner_text("[data-testid=job-result]")


def test_an_author_proposes_an_algorithm_and_uploads_an_implementation(
    celery_worker, browser_page, live_server, tmp_path
):
    from algorithms.models import Algorithm
    from planqk_samples import sample_zip
    from tests.services.test_uploads import HOSTILE

    author = make_user("author@example.com")
    good, hostile = tmp_path / "user_code.zip", tmp_path / "evil.zip"
    good.write_bytes(sample_zip("sum"))
    hostile.write_bytes(HOSTILE["zip slip"][0]())
    page = browser_page
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, live_server, author)

    page.goto(f"{live_server.url}/algorithms/")
    page.click("[data-testid=propose-algorithm]")
    page.fill("input[name=name]", "Deutsch-Jozsa")
    page.fill("input[name=summary]", "Constant or balanced in one query.")
    page.select_option("select[name=problem_class]", "FUNDAMENTALS")
    page.fill("input[name=tags]", "oracle, beginner")
    page.fill(
        "textarea[name=description]", "One query of $f: \\{0,1\\}^n \\to \\{0,1\\}$.\n\n<script>window.pwned=1</script>"
    )
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=description] .katex")
    assert page.evaluate("window.pwned") is None
    algorithm = Algorithm.objects.get(name="Deutsch-Jozsa")

    page.click("[data-testid=add-implementation]")
    page.fill("input[name=name]", "dj-python")
    page.select_option("select[name=visibility]", "PUBLIC")
    page.set_input_files("input[name=file]", str(good))
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=file-row][data-version='1'][data-status=READY]")

    # A hostile archive is refused with the services' message; nothing is added.
    page.set_input_files("[data-testid=upload-form] input[name=file]", str(hostile))
    page.click("[data-testid=upload-file]")
    page.wait_for_selector(".flash-error")
    assert page.locator("[data-testid=file-row]").count() == 1

    page.set_input_files("[data-testid=upload-form] input[name=file]", str(good))
    page.click("[data-testid=upload-file]")
    page.wait_for_selector("[data-testid=file-row][data-version='2']")

    # A git import is fetched by the worker; loopback is refused by the default outbound rules,
    # and the files table follows the import until it ends.
    page.fill("[data-testid=git-form] input[name=url]", "http://127.0.0.1:9/repo.git")
    page.click("[data-testid=git-import]")
    page.wait_for_selector("[data-testid=file-row][data-version='3'][data-status=FAILED]", timeout=120_000)
    assert "private or local network" in page.inner_text("[data-testid=file-error]")
    assert algorithm.implementations.get().files.count() == 3
    assert violations == []
