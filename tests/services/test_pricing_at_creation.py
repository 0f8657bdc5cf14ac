"""Pricing plans chosen when a service is created: the Create Service form and POST /api/v1/services/."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from planqk_samples import sample_zip
from services.models import PlanKind, Service

from .helpers import sample_upload, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


def _form(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "sum",
        "source": "FILE",
        "file": upload(sample_zip("sum")),
        "quantum_backend": "NONE",
        "memory_mb": 512,
        "cpus": "1",
        "timeout_seconds": 120,
    }
    values.update(overrides)
    return values


@pytest.fixture
def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def _plans(service: Service) -> list[tuple]:
    return sorted((p.name, p.kind, p.price_cents, p.requests_per_minute, p.max_concurrent) for p in service.plans.all())


def test_create_service_form_offers_free_per_execution_and_monthly_plans(client_for, user):
    response = client_for.post(
        "/services/create/",
        _form(
            plan_free="on",
            plan_per_execution="on",
            per_execution_price="0.25",
            per_execution_rpm=30,
            per_execution_concurrency=2,
            plan_monthly="on",
            monthly_price="12.00",
        ),
    )
    assert response.status_code == 302
    service = Service.objects.get(owner=user, name="sum")
    assert _plans(service) == [
        ("Free", PlanKind.FREE, 0, 120, 5),
        ("Monthly", PlanKind.MONTHLY, 1200, 120, 5),
        ("Per execution", PlanKind.PER_EXECUTION, 25, 30, 2),
    ]


def test_a_paid_plan_without_a_price_is_refused_at_its_field(client_for, user):
    response = client_for.post("/services/create/", _form(plan_per_execution="on", per_execution_price=""))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="error-per_execution_price"' in html
    assert "plan:bad-price" in html
    assert not Service.objects.exists()


def test_a_limit_out_of_range_and_no_plan_at_all_are_refused(client_for):
    html = client_for.post(
        "/services/create/", _form(plan_monthly="on", monthly_price="5", monthly_rpm=0)
    ).content.decode()
    assert "plan:bad-limit" in html
    html = client_for.post("/services/create/", _form()).content.decode()
    assert "plan:none" in html
    assert 'data-testid="error-plan_free"' in html
    assert not Service.objects.exists()


def test_the_form_shows_the_three_plan_kinds(client_for):
    html = client_for.get("/services/create/").content.decode()
    for name in ("plan_free", "plan_per_execution", "per_execution_price", "plan_monthly", "monthly_rpm"):
        assert f'name="{name}"' in html
    assert 'name="plan_free" checked' in html or "checked" in html.split('name="plan_free"')[1][:40]


def test_rest_create_takes_plans_and_defaults_to_free(api_client, user):
    plans = [
        {"name": "Basic", "kind": "PER_EXECUTION", "price_cents": 5, "requests_per_minute": 60, "max_concurrent": 3}
    ]
    response = api_client.post(
        "/api/v1/services/",
        {"name": "paid", "file": sample_upload("sum"), "plans": json.dumps(plans)},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert _plans(Service.objects.get(name="paid")) == [("Basic", PlanKind.PER_EXECUTION, 5, 60, 3)]
    response = api_client.post("/api/v1/services/", {"name": "free", "file": sample_upload("sum")}, format="multipart")
    assert response.status_code == 201
    assert _plans(Service.objects.get(name="free")) == [("Free", PlanKind.FREE, 0, 120, 5)]


@pytest.mark.parametrize(
    ("plans", "code"),
    [
        ("not json", "plan:invalid"),
        ("[]", "plan:none"),
        ('[{"name": "A", "kind": "FREE", "price_cents": 3}]', "plan:free-has-price"),
        ('[{"name": "A", "kind": "FREE"}, {"name": "a", "kind": "FREE"}]', "plan:name-taken"),
        ('[{"name": "A", "kind": "MONTHLY", "price_cents": 0}]', "plan:bad-price"),
    ],
)
def test_rest_create_refuses_bad_plans_and_stores_nothing(api_client, plans, code):
    response = api_client.post(
        "/api/v1/services/", {"name": "x", "file": sample_upload("sum"), "plans": plans}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Service.objects.exists()
