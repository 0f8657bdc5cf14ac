"""Stripe webhooks: verified by signature, applied once per event id."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import Card, Invoice, InvoiceStatus, WebhookEvent
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db
SECRET = "whsec_test_secret"
URL = "/settings/payments/webhooks/stripe/"


def signed(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def event(event_id: str, type_: str, obj: dict) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": type_, "data": {"object": obj}, "livemode": False}
    ).encode()


def post(client, payload: bytes, signature: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=payload, content_type="application/json", **headers)


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def processing_invoice(user):
    provider = make_user("provider@example.com")
    service = make_service(provider, "vqe")
    subscription = make_subscription(make_application(user), service, make_plan(service, PlanKind.MONTHLY, 900))
    start = (timezone.now() - timedelta(days=40)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Invoice.objects.create(
        number="INV-TEST-1", subscriber=user, provider=provider, subscription=subscription, service=service,
        service_name="vqe", application_name="my-app", plan_name="Monthly", plan_kind="MONTHLY",
        period_start=start, period_end=start + timedelta(days=28), amount_cents=900, currency="eur",
        status=InvoiceStatus.PROCESSING, attempts=1, gateway="stripe", payment_intent_id="pi_123",
    )  # fmt: skip


def test_bad_signature_is_rejected_and_changes_nothing(client, processing_invoice):
    payload = event(
        "evt_1", "payment_intent.succeeded", {"id": "pi_123", "metadata": {"invoice_id": str(processing_invoice.id)}}
    )
    for signature in (signed(payload, secret="whsec_other"), "t=1,v1=deadbeef", "garbage", ""):
        response = post(client, payload, signature)
        assert response.status_code == 400
        assert response.json()["code"] == "webhook:bad-signature"
    # A payload changed after signing does not match either.
    tampered = payload.replace(b"pi_123", b"pi_999")
    assert post(client, tampered, signed(payload)).status_code == 400
    # Nor does a signature far too old (replay of a captured request).
    assert post(client, payload, signed(payload, timestamp=int(time.time()) - 3600)).status_code == 400
    processing_invoice.refresh_from_db()
    assert processing_invoice.status == InvoiceStatus.PROCESSING
    assert not WebhookEvent.objects.exists()


def test_payment_succeeded_marks_the_invoice_paid(client, processing_invoice):
    payload = event(
        "evt_2", "payment_intent.succeeded", {"id": "pi_123", "metadata": {"invoice_id": str(processing_invoice.id)}}
    )
    response = post(client, payload, signed(payload))
    assert response.status_code == 200
    assert response.json()["outcome"] == "INV-TEST-1 paid"
    processing_invoice.refresh_from_db()
    assert processing_invoice.status == InvoiceStatus.PAID


def test_payment_failed_records_stripes_message(client, processing_invoice):
    obj = {"id": "pi_123", "metadata": {"invoice_id": str(processing_invoice.id)},
           "last_payment_error": {"message": "Your card has insufficient funds."}}  # fmt: skip
    payload = event("evt_3", "payment_intent.payment_failed", obj)
    assert post(client, payload, signed(payload)).status_code == 200
    processing_invoice.refresh_from_db()
    assert processing_invoice.status == InvoiceStatus.FAILED
    assert processing_invoice.failure_message == "Your card has insufficient funds."


def test_a_replayed_event_changes_nothing(client, user):
    Card.objects.create(user=user, gateway="stripe", payment_method_id="pm_1", brand="visa", last4="4242",
                        exp_month=12, exp_year=timezone.now().year + 2)  # fmt: skip
    payload = event("evt_4", "payment_method.detached", {"id": "pm_1", "object": "payment_method"})
    assert post(client, payload, signed(payload)).json()["outcome"] == "1 card(s) removed"
    assert not Card.objects.filter(payment_method_id="pm_1").exists()

    # The card comes back (added again); Stripe delivers the old event a second time.
    Card.objects.create(user=user, gateway="stripe", payment_method_id="pm_1", brand="visa", last4="4242",
                        exp_month=12, exp_year=timezone.now().year + 2)  # fmt: skip
    again = post(client, payload, signed(payload))
    assert again.status_code == 200
    assert again.json()["outcome"].startswith("duplicate")
    assert Card.objects.filter(payment_method_id="pm_1").exists()
    assert WebhookEvent.objects.filter(event_id="evt_4").count() == 1


def test_garbage_and_unconfigured_webhooks_get_clear_errors(client, settings):
    payload = b"not json"
    response = post(client, payload, signed(payload))
    assert response.status_code == 400
    assert response.json()["code"] == "webhook:bad-payload"
    assert post(client, b"{}", None).status_code == 400
    assert client.get(URL).status_code == 405
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = post(client, b"{}", signed(b"{}"))
    assert response.status_code == 503
    assert response.json()["code"] == "webhook:not-configured"
