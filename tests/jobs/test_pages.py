"""The Jobs pages with Django's test client: list, Create Job, the job page and its htmx polls."""

from __future__ import annotations

import json
import re

import pytest

from jobs import engine
from jobs.admission import execution_admit
from jobs.models import Job, JobStatus
from tests.conftest import make_user
from tests.jobs.conftest import SUM_DATA, SUM_PARAMS

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def test_empty_jobs_page_says_what_to_do_next(browser):
    page = browser.get("/jobs/").content.decode()
    assert "You have not run any jobs yet" in page
    assert "create one" in page  # no service yet: points to creating one


def test_jobs_list_shows_own_jobs_with_filters_and_pages(browser, user, make_version, settings):
    settings.PLANQK_OWNER_MAX_CONCURRENT = 0  # 22 jobs waiting at once, none of them run
    sums = make_version(user, "sum")
    fails = make_version(user, "failing")
    for _ in range(21):
        execution_admit(service_version=sums, owner=user, data=SUM_DATA)
    failed = execution_admit(service_version=fails, owner=user)
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED)
    stranger = make_user()
    theirs = execution_admit(service_version=make_version(stranger, "sum"), owner=stranger)

    first = browser.get("/jobs/").content.decode()
    assert first.count('data-testid="job-row"') == 20
    assert str(failed.pk) in first  # newest first
    assert str(theirs.pk) not in first
    assert "Page 1 of 2" in first
    assert browser.get("/jobs/?page=2").content.decode().count('data-testid="job-row"') == 2

    filtered = browser.get(f"/jobs/?service={fails.service_id}&status=FAILED").content.decode()
    assert filtered.count('data-testid="job-row"') == 1
    none = browser.get(f"/jobs/?service={fails.service_id}&status=SUCCEEDED").content.decode()
    assert "No jobs match these filters" in none
    # Garbage filters and pages never break the page.
    assert browser.get("/jobs/?status=BOGUS&service=nope&page=x").status_code == 200


def test_create_job_is_prefilled_from_the_services_example(browser, user, make_version):
    version = make_version(user, "slow")
    page = browser.get(f"/jobs/new/?service={version.service_id}").content.decode()
    assert "&quot;steps&quot;: 10" in page
    example = browser.get(f"/jobs/new/example?service={version.service_id}")
    assert example.status_code == 200
    assert 'hx-swap-oob="true"' in example.content.decode()
    # Unknown service or one without an example: nothing to swap.
    assert browser.get("/jobs/new/example?service=nope").status_code == 204


def test_create_job_runs_and_redirects_to_the_job_page(browser, user, make_version):
    version = make_version(user, "sum")
    response = browser.post(
        "/jobs/new/",
        {
            "service": str(version.service_id),
            "data_mode": "json",
            "data": json.dumps(SUM_DATA),
            "params_mode": "kv",
            "kv_key": ["round_off", ""],
            "kv_value": ["false", ""],
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.data == SUM_DATA
    assert job.params == SUM_PARAMS
    assert job.source == "UI"
    engine.execute_job(str(job.pk))
    page = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-status="SUCCEEDED"' in page
    assert "420.69" in page
    assert "summing 5 values" in page
    download = browser.get(f"/jobs/{job.pk}/result.json")
    assert download["Content-Disposition"] == 'attachment; filename="result.json"'
    assert json.loads(download.content) == {"result": {"sum": 420.69}, "metadata": None}


def test_create_job_form_explains_bad_json(browser, user, make_version):
    version = make_version(user, "sum")
    base = {"service": str(version.service_id), "data_mode": "json", "params_mode": "json"}
    cases = [
        ({"data": '{"values": [1, 2'}, "Input data is not valid JSON"),
        ({"data": "[1, 2]"}, "must be a JSON object"),
        ({"params": '{"a": NaN}'}, "Parameters is not valid JSON"),
        ({"data": "[" * 100_000 + "]" * 100_000}, "nested too deeply"),
        ({"data": json.dumps({"x": "y" * 1_100_000})}, "at most"),
        ({"params_mode": "kv", "kv_key": ["a", "a"], "kv_value": ["1", "2"]}, "given twice"),
        ({"data_mode": "datapool"}, "Choose a file, or enter the input data as JSON"),
        ({"params_mode": "datapool"}, "Choose a file, or enter the parameters as JSON"),
        ({"params_mode": "datapool", "params_file": "not-a-file"}, "Select a valid choice"),
        ({"service": "not-a-service"}, "Select a valid choice"),
    ]
    for extra, message in cases:
        response = browser.post("/jobs/new/", {**base, **extra})
        assert response.status_code == 200, extra
        assert message in response.content.decode(), extra
    assert not Job.objects.exists()


def test_run_again_prefills_the_form(browser, user, make_version):
    job = execution_admit(service_version=make_version(user, "sum"), owner=user, data=SUM_DATA, params=SUM_PARAMS)
    page = browser.get(f"/jobs/new/?from={job.pk}").content.decode()
    assert "420.69" not in page  # input, not result
    assert "0.69" in page
    assert "round_off" in page
    assert f'value="{job.service_id}" selected' in page


def test_another_users_job_is_404_in_the_ui(browser, make_version):
    other = make_user()
    theirs = execution_admit(service_version=make_version(other, "sum"), owner=other, data=SUM_DATA)
    for path in ("", "status", "logs", "result.json", "cancel/"):
        assert browser.get(f"/jobs/{theirs.pk}/{path}").status_code == 404, path
    assert browser.post(f"/jobs/{theirs.pk}/cancel/").status_code == 404
    assert browser.get(f"/jobs/new/?from={theirs.pk}").status_code == 200  # a fresh form, nothing of theirs
    assert Job.objects.get(pk=theirs.pk).status == JobStatus.PENDING


def test_polls_stop_with_286_at_a_final_state(browser, user, make_version):
    job = execution_admit(service_version=make_version(user, "sum"), owner=user, data=SUM_DATA)
    status = browser.get(f"/jobs/{job.pk}/status")
    assert status.status_code == 200
    assert 'hx-trigger="every 1s"' in status.content.decode()
    assert browser.get(f"/jobs/{job.pk}/logs?after=0").status_code == 200
    engine.execute_job(str(job.pk))
    final = browser.get(f"/jobs/{job.pk}/status")
    assert final.status_code == 286
    assert "420.69" in final.content.decode()
    logs = browser.get(f"/jobs/{job.pk}/logs?after=0")
    assert logs.status_code == 286
    assert "summing 5 values" in logs.content.decode()
    assert browser.get(f"/jobs/{job.pk}/logs?after=abc").status_code == 286


def test_cancel_asks_for_confirmation_first(browser, user, make_version):
    job = execution_admit(service_version=make_version(user, "sum"), owner=user, data=SUM_DATA)
    confirm = browser.get(f"/jobs/{job.pk}/cancel/")
    assert "will not start" in confirm.content.decode()
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING
    browser.post(f"/jobs/{job.pk}/cancel/")
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


def test_failed_job_page_shows_code_and_detail(browser, user, make_version):
    job = execution_admit(service_version=make_version(user, "failing"), owner=user)
    engine.execute_job(str(job.pk))
    page = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert "SAMPLE_FAILURE" in page
    assert "always fails" in page
    assert browser.get(f"/jobs/{job.pk}/result.json").status_code == 404


def test_pages_need_a_login(client):
    assert client.get("/jobs/").status_code == 302
    assert client.get("/jobs/new/").status_code == 302


def test_create_job_from_a_data_pool_file_and_save_the_result_into_a_pool(
    browser, user, make_version, settings, tmp_path
):
    from datapools.models import DataFile
    from datapools.services import datafile_create_from_json, datapool_create

    settings.MEDIA_ROOT = str(tmp_path / "media")
    inputs = datapool_create(user=user, name="inputs")
    datafile = datafile_create_from_json(user=user, pool=inputs, name="numbers", payload=SUM_DATA)
    results = datapool_create(user=user, name="results")
    version = make_version(user, "sum")
    page = browser.get("/jobs/new/").content.decode()
    assert "inputs / " in page  # the file is offered
    assert ">results</option>" in page  # and the pool to write into
    response = browser.post(
        "/jobs/new/",
        {
            "service": str(version.service_id),
            "data_mode": "datapool",
            "data_file": str(datafile.pk),
            "params_mode": "json",
            "params": "",
            "save_result": "on",
            "result_pool": str(results.pk),
        },
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.data_ref == datafile.reference
    engine.execute_job(str(job.pk))
    job.refresh_from_db()
    assert job.result == {"sum": 420.69}
    assert job.result_file.pool_id == results.pk
    assert DataFile.objects.filter(pool=results).count() == 1
    page = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-testid="result-file"' in page


def test_create_job_with_parameters_from_a_data_pool_file_and_run_it_again(
    browser, user, make_version, settings, tmp_path
):
    from datapools.services import datafile_create_from_json, datapool_create

    settings.MEDIA_ROOT = str(tmp_path / "media")
    pool = datapool_create(user=user, name="settings")
    params_file = datafile_create_from_json(user=user, pool=pool, name="rounding", payload={"round_off": True})
    version = make_version(user, "sum")
    response = browser.post(
        "/jobs/new/",
        {
            "service": str(version.service_id),
            "data_mode": "json",
            "data": json.dumps(SUM_DATA),
            "params_mode": "datapool",
            "params_file": str(params_file.pk),
            # What the other modes hold is ignored: the chosen mode decides.
            "params": '{"round_off": false}',
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    assert job.params is None
    assert job.params_ref == params_file.reference
    engine.execute_job(str(job.pk))
    job.refresh_from_db()
    assert job.result == {"sum": 420}  # 420.69 rounded off: the file's params reached the service
    page = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert f"From data pool file <code>{params_file.pk}</code>" in page

    again = browser.get(f"/jobs/new/?from={job.pk}").content.decode()
    assert f'<option value="{params_file.pk}" selected>' in again
    radio = re.search(r'<input type="radio" name="params_mode" value="datapool"[^>]*>', again)
    assert radio is not None
    assert "checked" in radio.group(0)
