"""REST API: /api/v1/payments/ (cards, SetupIntents, invoices, earnings)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import services
from payments.models import Card, Invoice, UsageRecord
from services.models import PlanKind
from tests.conftest import api_client_for, make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db
YEAR = timezone.now().year + 2


def test_add_list_and_remove_cards(api_client, user, other_user):
    added = api_client.post(
        "/api/v1/payments/cards/",
        {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": YEAR, "cvc": "123"},
        format="json",
    )
    assert added.status_code == 201, added.json()
    card = added.json()
    assert (card["brand"], card["last4"], card["is_expired"]) == ("visa", "4242", False)
    assert "payment_method_id" not in card
    by_id = api_client.post("/api/v1/payments/cards/", {"payment_method": "pm_card_mastercard"}, format="json")
    assert by_id.status_code == 201
    assert [c["last4"] for c in api_client.get("/api/v1/payments/cards/").json()] == ["4444", "4242"]

    theirs = api_client_for(other_user)
    assert theirs.get("/api/v1/payments/cards/").json() == []
    assert theirs.delete(f"/api/v1/payments/cards/{card['id']}/").status_code == 404
    assert api_client.delete(f"/api/v1/payments/cards/{card['id']}/").status_code == 204
    assert Card.objects.filter(user=user).count() == 1


def test_a_declined_card_is_402_with_stripes_message(api_client):
    response = api_client.post(
        "/api/v1/payments/cards/",
        {"number": "4000000000000002", "exp_month": 12, "exp_year": YEAR, "cvc": "123"},
        format="json",
    )
    assert response.status_code == 402
    assert response.json() == {
        "code": "card:card_declined",
        "detail": "Your card was declined.",
        "decline_code": "generic_decline",
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"number": "4242424242424242"},
        {"number": "4242424242424242", "payment_method": "pm_card_visa", "exp_month": 1, "exp_year": YEAR, "cvc": "1"},
        {"number": "4242424242424242", "exp_month": 13, "exp_year": YEAR, "cvc": "123"},
        {"payment_method": ["not", "a", "string"]},
        {"setup_intent": "nonsense"},
    ],
)
def test_bad_card_requests_are_400_with_a_message(api_client, body):
    response = api_client.post("/api/v1/payments/cards/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_setup_intent_needs_stripe_in_the_simulator(api_client):
    response = api_client.post("/api/v1/payments/setup-intents/")
    assert response.status_code == 201  # the simulator answers, but confirming needs Stripe.js
    assert response.json()["client_secret"].startswith(response.json()["id"])
    confirm = api_client.post("/api/v1/payments/cards/", {"setup_intent": response.json()["id"]}, format="json")
    assert confirm.status_code == 400
    assert "Stripe gateway" in confirm.json()["detail"]


def test_invoices_for_the_subscriber_and_earnings_for_the_provider(user, api_client):
    provider = make_user("provider@example.com")
    service = make_service(provider, "sum")
    subscription = make_subscription(make_application(user), service, make_plan(service, PlanKind.PER_EXECUTION, 40))
    for _ in range(3):
        record = UsageRecord.objects.create(subscription=subscription, status="SUCCEEDED", price_cents=40)
        UsageRecord.objects.filter(pk=record.pk).update(recorded_at=timezone.now() - timedelta(days=40))
    services.billing_run()
    invoice = Invoice.objects.get()

    listing = api_client.get("/api/v1/payments/invoices/").json()
    assert listing["count"] == 1
    item = listing["results"][0]
    assert (item["amount_cents"], item["executions"], item["status"]) == (120, 3, "FAILED")  # no card yet
    assert item["lines"] == [
        {"description": "Executions at 0.40 EUR", "quantity": 3, "unit_price_cents": 40, "amount_cents": 120}
    ]
    provider_api = api_client_for(provider)
    assert provider_api.get("/api/v1/payments/invoices/").json()["count"] == 0
    assert provider_api.get("/api/v1/payments/earnings/").json()["results"][0]["id"] == str(invoice.id)
    assert provider_api.get(f"/api/v1/payments/invoices/{invoice.id}/").status_code == 200
    stranger = api_client_for(make_user())
    assert stranger.get(f"/api/v1/payments/invoices/{invoice.id}/").status_code == 404
    assert api_client.get("/api/v1/payments/invoices/not-a-uuid/").status_code == 404


def test_payments_api_needs_authentication(client, db):
    assert client.get("/api/v1/payments/cards/").status_code in (401, 403)
