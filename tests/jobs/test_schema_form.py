"""Create Job's form made from the service's schemas: fields, constraints, parsing, 422 errors."""

from __future__ import annotations

import re

import pytest

from jobs import schema_form
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def _input(page: str, name: str) -> str:
    match = re.search(rf'<(?:input|select|textarea)[^>]*name="{re.escape(name)}"[^>]*>', page)
    assert match, name
    return match.group(0)


def test_the_bell_form_shows_its_parameters_with_their_constraints(browser, user, make_version):
    version = make_version(user, "qiskit_bell")
    page = browser.get(f"/jobs/new/?service={version.service_id}").content.decode()
    shots = _input(page, "sf:params.shots")
    for attribute in ('type="number"', 'min="1"', 'max="1000000"', 'step="1"', 'value="1024"'):
        assert attribute in shots
    assert 'value="aer_simulator"' in _input(page, "sf:params.backend")
    assert 'type="number"' in _input(page, "sf:params.seed")
    assert "Simulator seed" in page  # the schema's description
    assert re.search(r'<input type="radio" name="params_mode" value="form"[^>]*checked', page)
    # Its data schema describes no fields: JSON is the way, and no form panel is offered.
    assert 'data-testid="data-form"' not in page
    assert re.search(r'<input type="radio" name="data_mode" value="json"[^>]*checked', page)


def test_a_job_from_the_form(browser, user, make_version):
    version = make_version(user, "qiskit_bell")
    response = browser.post(
        "/jobs/new/",
        {
            "service": str(version.service_id),
            "data_mode": "json",
            "data": "{}",
            "params_mode": "form",
            "sf:params.shots": "100",
            "sf:params.seed": "",
            "sf:params.backend": "aer_simulator",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Job.objects.get().params == {"shots": 100, "backend": "aer_simulator"}


def test_the_sum_form_reads_a_list_of_numbers_and_a_checkbox(browser, user, make_version):
    version = make_version(user, "sum")
    page = browser.get(f"/jobs/new/?service={version.service_id}").content.decode()
    values = _input(page, "sf:data.values")
    assert 'value="100, 50, 200, 70, 0.69"' in values
    assert "pattern=" in values
    assert 'type="checkbox"' in _input(page, "sf:params.round_off")
    base = {"service": str(version.service_id), "data_mode": "form", "params_mode": "form"}
    browser.post("/jobs/new/", {**base, "sf:data.values": "1, 2, 3.5", "sf:params.round_off": "true"})
    job = Job.objects.get()
    assert job.data == {"values": [1, 2, 3.5]}
    assert job.params == {"round_off": True}


def test_bad_values_are_shown_on_their_fields_and_nothing_is_queued(browser, user, make_version):
    version = make_version(user, "qiskit_bell")
    base = {"service": str(version.service_id), "data_mode": "json", "data": "{}", "params_mode": "form"}
    # Out of range: the browser would refuse it; without JavaScript the 422 lands on the field.
    page = browser.post("/jobs/new/", {**base, "sf:params.shots": "0"}).content.decode()
    assert re.search(r'data-testid="error-params\.shots">[^<]*0 is less than the minimum of 1', page)
    assert 'aria-invalid="true"' in _input(page, "sf:params.shots")
    assert 'value="0"' in _input(page, "sf:params.shots")  # what was typed stays
    # Not a number at all: the form says so before admission.
    page = browser.post("/jobs/new/", {**base, "sf:params.shots": "many"}).content.decode()
    assert re.search(r'data-testid="error-params\.shots">Enter a whole number\.', page)
    assert not Job.objects.exists()


def test_the_json_mode_lists_the_schema_errors_by_path(browser, user, make_version):
    version = make_version(user, "sum")
    page = browser.post(
        "/jobs/new/",
        {
            "service": str(version.service_id),
            "data_mode": "json",
            "data": '{"values": [1, "x"]}',
            "params_mode": "json",
        },
    ).content.decode()
    assert "data.values[1]: &#x27;x&#x27; is not of type &#x27;number&#x27;" in page
    assert not Job.objects.exists()


def test_a_field_the_form_cannot_express_is_a_json_box(browser, user, make_version):
    version = make_version(user, "dwave_qubo")
    page = browser.get(f"/jobs/new/?service={version.service_id}").content.decode()
    qubo = _input(page, "sf:data.qubo")
    assert qubo.startswith("<textarea")
    assert "required" in qubo
    base = {"service": str(version.service_id), "data_mode": "form", "params_mode": "form"}
    page = browser.post("/jobs/new/", {**base, "sf:data.qubo": ""}).content.decode()
    assert re.search(r'data-testid="error-data\.qubo">This field is required\.', page)
    browser.post("/jobs/new/", {**base, "sf:data.qubo": '{"0,1": 2}', "sf:params.num_reads": "10"})
    job = Job.objects.get()
    assert job.data == {"qubo": {"0,1": 2}}
    assert job.params == {"num_reads": 10}


def test_without_javascript_another_service_shows_its_fields_after_a_round_trip(browser, user, make_version):
    version = make_version(user, "slow")
    page = browser.post("/jobs/new/", {"service": str(version.service_id), "reload": "1"}).content.decode()
    assert 'name="sf:params.steps"' in page
    assert "<noscript>" in page
    assert not Job.objects.exists()


def test_the_htmx_swap_brings_the_services_fields(browser, user, make_version):
    version = make_version(user, "slow")
    swap = browser.get(f"/jobs/new/example?service={version.service_id}").content.decode()
    assert 'id="input-params" hx-swap-oob="true"' in swap
    assert 'value="10"' in _input(swap, "sf:params.steps")


def test_run_again_fills_the_form_or_falls_back_to_json(browser, user, make_version):
    from jobs.admission import execution_admit

    version = make_version(user, "sum")
    job = execution_admit(service_version=version, owner=user, data={"values": [1, 2]}, params={"round_off": True})
    page = browser.get(f"/jobs/new/?from={job.pk}").content.decode()
    assert 'value="1, 2"' in _input(page, "sf:data.values")
    assert "checked" in _input(page, "sf:params.round_off")
    # Input the form cannot hold (an unknown key) opens in the JSON mode, nothing lost.
    odd = execution_admit(service_version=version, owner=user, data={"values": [1], "extra": {"a": 1}})
    page = browser.get(f"/jobs/new/?from={odd.pk}").content.decode()
    assert re.search(r'<input type="radio" name="data_mode" value="json"[^>]*checked', page)
    assert "&quot;extra&quot;" in page


def test_schema_fields_of_nested_objects_enums_and_refs():
    schema = {
        "type": "object",
        "required": ["problem"],
        "properties": {
            "problem": {"$ref": "#/components/schemas/Problem"},
            "mode": {"type": "string", "enum": ["fast", "exact"], "default": "fast"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 2, "maximum": 64},
                        "weights": {"type": "array", "items": {"type": "number"}},
                    },
                }
            }
        },
    }
    tree = schema_form.build_fields(schema, root="data")
    fields = {item.path: item for item in tree.walk()}
    assert fields["data.problem"].kind == "object"
    assert fields["data.problem.size"].attrs == [("min", "2"), ("max", "64"), ("step", "1"), ("required", "")]
    assert fields["data.mode"].choices == [("", "(not set)"), ('"fast"', "fast"), ('"exact"', "exact")]
    assert fields["data.mode"].value == '"fast"'
    post = {
        "sf:data.problem.size": "8",
        "sf:data.problem.weights": "1.5, -2, 3e2",
        "sf:data.mode": '"exact"',
        "sf:data.tags": "a\nb\n",
    }
    value, ok = schema_form.parse(tree, post)
    assert ok
    assert value == {"problem": {"size": 8, "weights": [1.5, -2, 300.0]}, "mode": "exact", "tags": ["a", "b"]}
    unplaced = schema_form.place_errors(
        tree,
        [
            {"path": "data.problem.weights[1]", "message": "-2 is less than the minimum of 0"},
            {"path": "data.problem", "message": "'size' is a required property"},
            {"path": "data", "message": "Additional properties are not allowed ('x' was unexpected)"},
        ],
    )
    assert fields["data.problem.weights"].errors == ["[1]: -2 is less than the minimum of 0"]
    assert fields["data.problem.size"].errors == ["This field is required."]
    assert unplaced == ["data: Additional properties are not allowed ('x' was unexpected)"]
    assert schema_form.build_fields({"type": "object", "description": "Not used."}, root="data") is None
