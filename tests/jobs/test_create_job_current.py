"""Create Job, Try it and the service page's examples for a current-generation version: its
input is one object (the request's top-level keys), prefilled from the spec's example, with no
parameters; the shown curl body is that object. Before, Create Job split it into data and params
and admission refused every job with 422, and the curl said {"data": ..., "params": ...}."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client, RequestFactory

from jobs import engine
from jobs.models import Job, JobStatus
from services.models import BuildStatus, Generation, Lifecycle
from tests.jobs.test_current_generation import build, private_media, user  # noqa: F401 (fixtures)
from tests.services.helpers import build_log, make_zip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

PROGRAM = b"""\
def run(values: list[float], scale: float = 1.0) -> dict:
    return {"total": sum(values) * scale}
"""

SPEC = b"""openapi: 3.0.3
info: {title: typed sum, version: "1.0"}
paths:
  /:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [values]
              properties:
                values: {type: array, items: {type: number}}
                scale: {type: number}
            example: {values: [1, 2, 3], scale: 2}
      responses:
        "201": {description: created}
"""


@pytest.fixture
def version(user):  # noqa: F811
    built = build(
        user,
        "typed-sum",
        make_zip({"src/program.py": PROGRAM, "openapi-spec.yml": SPEC}),
    )
    assert built.status == BuildStatus.READY, build_log(built)
    assert built.generation == Generation.CURRENT
    return built


@pytest.fixture
def browser(user):  # noqa: F811
    client = Client()
    client.force_login(user)
    return client


def test_create_job_prefills_the_whole_request_and_runs_it(browser, version):
    page = browser.get(f"/jobs/new/?service={version.service_id}").content.decode()
    assert 'data-testid="no-params"' in page
    assert '<input type="hidden" name="params_mode" value="json">' in page  # what the page sends
    assert 'name="data.values' in page or "&quot;values&quot;" in page  # its fields, or its JSON

    response = browser.post(
        "/jobs/new/",
        {
            "service": str(version.service_id),
            "data_mode": "json",
            "data": '{"values": [1, 2, 3.5], "scale": 2}',
            "params_mode": "json",
        },
    )
    assert response.status_code == 302, re.findall(
        r"(?:field-error|messages?)[^>]*>([^<]+)<", response.content.decode()
    )
    job = Job.objects.get()
    assert job.data == {"values": [1, 2, 3.5], "scale": 2}
    engine.execute_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail)
    assert job.result == {"total": 13.0}


def test_create_job_shows_the_schemas_errors_and_makes_no_job(browser, version):
    response = browser.post(
        "/jobs/new/",
        {"service": str(version.service_id), "data_mode": "json", "data": '{"values": ["x"]}', "params_mode": "json"},
    )
    assert response.status_code == 200
    assert "values[0]" in response.content.decode()
    assert not Job.objects.exists()


def test_try_it_and_the_curl_use_the_request_example(browser, version):
    service = version.service
    service.lifecycle = Lifecycle.PUBLISHED
    service.save(update_fields=["lifecycle"])
    page = browser.get(f"/marketplace/{service.pk}/").content.decode()
    assert "HubServiceClient" in page  # the current generation's client, with the example request
    assert "request={&#x27;values&#x27;: [1, 2, 3], &#x27;scale&#x27;: 2}" in page
    from marketplace.views import _call_examples

    call = _call_examples(RequestFactory().get("/"), service, version)["call_curl"]
    assert json.loads(re.search(r"-d '(.*)'$", call).group(1)) == {"values": [1, 2, 3], "scale": 2}

    response = browser.post(f"/marketplace/{service.pk}/try/")
    job = Job.objects.get()
    assert response.status_code == 302
    assert job.data == {"values": [1, 2, 3], "scale": 2}
    assert not job.params
    engine.execute_job(str(job.pk))
    job.refresh_from_db()
    assert job.result == {"total": 12.0}
