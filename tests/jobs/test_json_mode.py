"""Create Job: switching an input between its form and the JSON box carries the entered values over
(both ways where the form can show them), in a real browser."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _ready(owner, sample: str):
    """A READY version with the sample's spec; not built: these tests end on the job page."""
    from planqk_samples import sample_files
    from services.models import BuildStatus, Service, ServiceVersion

    service = Service.objects.create(owner=owner, name=sample.replace("_", "-"), title=sample)
    return ServiceVersion.objects.create(
        service=service,
        version="1.0.0",
        status=BuildStatus.READY,
        api_spec=sample_files(sample)["openapi-spec.yml"].decode(),
    )


def _settled(page) -> None:
    """Wait for a mode switch's conversion to answer (the form is aria-busy until then): a field
    filled before it would be replaced by the answer, as it was in one full CI run."""
    expect(page.locator(".job-form[aria-busy]")).to_have_count(0)


def _json(page, selector: str) -> dict:
    return json.loads(page.input_value(selector))


def test_form_values_reach_the_json_box_and_back(browser_page, live_server, user):
    version = _ready(user, "qiskit_bell")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/new/?service={version.service_id}")
    page.wait_for_load_state()
    shots = page.locator("[name='sf:params.shots']")
    expect(shots).to_have_value("1024")  # the spec's example, in the form
    shots.fill("77")
    page.fill("[name='sf:params.seed']", "5")
    page.fill("[name='sf:params.backend']", "aer_simulator_statevector")

    page.check("input[name=params_mode][value=json]")
    # What was entered in the form, typed as the schema says (integers), not the example.
    expect(page.locator("#id_params")).to_have_value(json.dumps(
        {"shots": 77, "seed": 5, "backend": "aer_simulator_statevector"}, indent=2
    ))  # fmt: skip

    _settled(page)
    page.fill("#id_params", json.dumps({"shots": 12, "backend": "aer_simulator"}))
    page.check("input[name=params_mode][value=form]")
    expect(shots).to_have_value("12")
    expect(page.locator("[name='sf:params.seed']")).to_have_value("")
    expect(page.locator("[name='sf:params.backend']")).to_have_value("aer_simulator")

    # JSON the form cannot show stays in JSON mode, with the reason, and nothing is lost.
    page.check("input[name=params_mode][value=json]")
    _settled(page)
    expect(page.locator("#id_params")).to_have_value(json.dumps({"shots": 12, "backend": "aer_simulator"}, indent=2))
    page.fill("#id_params", '{"shots": 3, "optimisation": "heavy"}')
    # click, not check: the page may switch back before Playwright looks at the radio again.
    page.click("input[name=params_mode][value=form]")
    expect(page.locator("[data-convert-error=params]")).to_contain_text("no field in the form")
    expect(page.locator("input[name=params_mode][value=json]")).to_be_checked()
    expect(page.locator("#id_params")).to_be_visible()
    assert _json(page, "#id_params") == {"shots": 3, "optimisation": "heavy"}

    # Back to something the form can show: submitted from the form, the job has the form's values.
    page.fill("#id_params", '{"shots": 3}')
    page.check("input[name=params_mode][value=form]")
    expect(shots).to_have_value("3")
    expect(page.locator("[data-convert-error=params]")).to_be_hidden()
    page.click("[data-testid=run-job]")
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    assert Job.objects.get().params == {"shots": 3}


def test_a_list_of_numbers_carries_over_and_a_bad_field_keeps_the_form(browser_page, live_server, user):
    version = _ready(user, "sum")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/jobs/new/?service={version.service_id}")
    page.wait_for_load_state()
    values = page.locator("[name='sf:data.values']")
    values.fill("1, 2.5, -3")
    page.check("input[name=data_mode][value=json]")
    expect(page.locator("#id_data")).to_have_value(json.dumps({"values": [1, 2.5, -3]}, indent=2))
    page.check("input[name=data_mode][value=form]")
    _settled(page)
    expect(values).to_have_value("1, 2.5, -3")

    values.fill("1, two")
    page.click("input[name=data_mode][value=json]")  # click: the page switches back at once
    expect(page.locator("[data-convert-error=data]")).to_contain_text("Fix these fields first")
    expect(page.locator("input[name=data_mode][value=form]")).to_be_checked()
    expect(values).to_have_value("1, two")
    expect(page.locator("#id_data")).to_be_hidden()


@pytest.mark.django_db
def test_the_conversion_answers_bad_requests_plainly_and_reveals_no_other_service(user, client):
    from tests.conftest import make_user

    mine = _ready(user, "qiskit_bell")
    theirs = _ready(make_user("other@example.com"), "sum")
    client.force_login(user)

    def convert(**fields):
        return client.post("/jobs/new/", {"convert": "params", "to": "json", "service": str(mine.service_id), **fields})

    assert convert(**{"sf:params.shots": "9"}).json() == {"text": json.dumps({"shots": 9}, indent=2)}
    assert convert(convert="result").status_code == 400
    assert convert(to="yaml").status_code == 400
    bad = convert(**{"sf:params.shots": "many"})
    assert bad.status_code == 422
    assert "Shots: Enter a whole number." in bad.json()["detail"]
    not_json = convert(to="form", params="{'shots': 3")
    assert not_json.status_code == 422
    assert "valid JSON" in not_json.json()["detail"]
    # Another user's service gets the answer of a service without fields: nothing of its spec.
    foreign = convert(convert="data", service=str(theirs.service_id), **{"sf:data.values": "1"})
    assert foreign.status_code == 422
    assert foreign.json() == {"detail": "This service's API spec describes no fields for this input."}
    assert not Job.objects.exists()
