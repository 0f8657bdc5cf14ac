"""The REST API takes what its schema says and nothing it would coerce (planqk_portal.api_fields).

Each case is what an attacker's or a careless client's request sends and what is stored
afterwards: a non-string where the schema says string, a UUID in a form the uuid format does not
have, an empty filter where the schema has an enum. All are 400 ``invalid`` naming the field.
"""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.django_db


def _invalid(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"], body


@pytest.mark.parametrize("description", [5, 1.5, True, ["a"], {"a": 1}])
def test_a_non_string_description_is_refused_and_nothing_is_stored(api_client, user, description):
    from applications.models import Application
    from datapools.models import DataPool

    _invalid(api_client.post("/api/v1/applications/", {"name": "app", "description": description}, format="json"),
             "description")  # fmt: skip
    _invalid(api_client.post("/api/v1/datapools/", {"name": "pool", "description": description}, format="json"),
             "description")  # fmt: skip
    assert not Application.objects.filter(owner=user).exists()
    assert not DataPool.objects.filter(owner=user).exists()
    # The same request with a string is taken, as before.
    assert (
        api_client.post("/api/v1/applications/", {"name": "app", "description": "5"}, format="json").status_code == 201
    )


def test_a_string_is_counted_as_sent(api_client, user):
    from datapools.models import DataPool

    # DRF trims first and would take 120 letters plus spaces where the schema's maxLength is 120.
    _invalid(api_client.post("/api/v1/datapools/", {"name": "p" * 120 + "  "}, format="json"), "name")
    _invalid(api_client.post("/api/v1/datapools/", {"name": "   "}, format="json"), "name")
    assert not DataPool.objects.filter(owner=user).exists()


def test_non_string_tags_are_refused(api_client):
    from algorithms.models import Algorithm

    body = {"name": "Grover", "summary": "Search.", "tags": ["search", 7]}
    _invalid(api_client.post("/api/v1/algorithms/", body, format="json"), "tags")
    assert not Algorithm.objects.filter(name="Grover").exists()
    created = api_client.post("/api/v1/algorithms/", {**body, "tags": ["search", "Amplitude Amplification"]},
                              format="json")  # fmt: skip
    assert created.status_code == 201
    assert sorted(created.json()["tags"]) == ["amplitude-amplification", "search"]
    assert created.json()["implementation_count"] == 0  # the answer has every documented field


@pytest.mark.parametrize("form", ["hex", "braces", "urn", "upper-hex", "empty", "int"])
def test_a_service_filter_must_be_a_hyphenated_uuid(api_client, form):
    value = uuid.uuid4()
    text = {
        "hex": value.hex,
        "braces": f"{{{value}}}",
        "urn": value.urn,
        "upper-hex": value.hex.upper(),
        "empty": "",
        "int": str(value.int),
    }[form]
    _invalid(api_client.get("/api/v1/jobs/", {"service": text}), "service")
    assert api_client.get("/api/v1/jobs/", {"service": str(value)}).status_code == 200
    assert api_client.get("/api/v1/jobs/", {"service": str(value).upper()}).status_code == 200


def test_a_job_request_with_an_id_in_another_form_is_refused(api_client):
    _invalid(api_client.post("/api/v1/jobs/", {"service_id": uuid.uuid4().hex}, format="json"), "service_id")
    _invalid(api_client.post("/api/v1/jobs/", {"service_name": 12}, format="json"), "service_name")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/marketplace/services/?quantum_backend=", "quantum_backend"),
        ("/api/v1/marketplace/services/?pricing=", "pricing"),
        ("/api/v1/algorithms/?problem_class=", "problem_class"),
        ("/api/v1/algorithms/?problem_class=NOT-A-CLASS", "problem_class"),
        ("/api/v1/jobs/?status=", "status"),
    ],
)
def test_an_empty_or_unknown_enum_filter_is_refused(api_client, url, field):
    _invalid(api_client.get(url), field)


def test_the_filters_still_filter(api_client):
    assert api_client.get("/api/v1/marketplace/services/", {"quantum_backend": "IBM"}).status_code == 200
    assert api_client.get("/api/v1/algorithms/", {"problem_class": "SEARCH", "search": ""}).status_code == 200
    assert api_client.get("/api/v1/jobs/", {"status": "RUNNING"}).status_code == 200


@pytest.mark.parametrize("month", ["12", 12.0, 12.5, True])
def test_a_card_expiry_that_is_not_a_json_integer_is_refused_and_no_card_is_stored(api_client, user, month):
    from payments.models import Card

    card = {"number": "4242424242424242", "exp_month": month, "exp_year": 2040, "cvc": "123"}
    _invalid(api_client.post("/api/v1/payments/cards/", card, format="json"), "exp_month")
    _invalid(api_client.post("/api/v1/payments/cards/", {**card, "exp_month": 12, "exp_year": "2040"}, format="json"),
             "exp_year")  # fmt: skip
    assert not Card.objects.filter(user=user).exists()
    taken = api_client.post("/api/v1/payments/cards/", {**card, "exp_month": 12}, format="json")
    assert taken.status_code == 201, taken.content
    assert Card.objects.get(user=user).exp_month == 12


@pytest.mark.parametrize("flag", ["true", 1, 0, None])
def test_a_job_flag_that_is_not_a_json_boolean_is_refused_and_no_job_is_made(api_client, flag):
    from jobs.models import Job

    body = {"service_name": "nothing-here", "save_result_to_pool": flag}
    _invalid(api_client.post("/api/v1/jobs/", body, format="json"), "save_result_to_pool")
    assert not Job.objects.exists()


@pytest.mark.parametrize("memory", ["512", True, 512.5])
def test_a_service_resource_that_is_not_a_json_number_of_its_type_is_refused(api_client, user, memory):
    from payments.testing import add_test_card
    from services.models import Service

    add_test_card(user)  # a provider needs a card to create a service
    body = {"name": "remote", "external_url": "https://quantum.example.org/svc/", "memory_mb": memory}
    _invalid(api_client.post("/api/v1/services/", body, format="json"), "memory_mb")
    _invalid(api_client.post("/api/v1/services/", {**body, "memory_mb": 512, "cpus": "0.5"}, format="json"), "cpus")
    assert not Service.objects.filter(owner=user).exists()
    # A form body has only text: there "512" is the number, as before.
    form = api_client.post("/api/v1/services/", {**body, "memory_mb": "512"}, format="multipart")
    assert form.status_code == 201, form.content
    assert Service.objects.get(owner=user).memory_mb == 512
