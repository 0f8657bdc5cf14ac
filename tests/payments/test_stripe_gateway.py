"""The Stripe gateway's real stripe-python calls, against a local fake of Stripe's API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments import selectors, services
from payments.gateways import get_gateway
from payments.models import Card, Invoice, InvoiceStatus, PaymentCustomer, UsageRecord
from planqk_portal.errors import ApplicationError
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db


def last_month() -> timezone.datetime:
    start, _ = services.billing_period(timezone.now())
    return start - timedelta(days=3)


def test_card_is_saved_through_customer_attach_and_setup_intent(user, fake_stripe):
    card = services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")

    assert (card.gateway, card.brand, card.last4) == ("stripe", "visa", "4242")
    assert card.payment_method_id.startswith("pm_")
    assert card.payment_method_id != "pm_card_visa"  # Stripe clones its shared test PaymentMethods
    assert selectors.user_has_valid_card(user=user)
    customer = PaymentCustomer.objects.get(user=user, gateway="stripe")
    [created] = fake_stripe.calls("POST", "/v1/customers")
    assert created.params["email"] == user.email
    assert created.headers["Idempotency-Key"] == f"customer-{user.uuid}"
    [attach] = fake_stripe.calls("POST", "/v1/payment_methods/pm_card_visa/attach")
    assert attach.params["customer"] == customer.customer_id
    [setup] = fake_stripe.calls("POST", "/v1/setup_intents")
    assert setup.params["confirm"] == "true"
    assert setup.params["payment_method"] == card.payment_method_id
    assert setup.params["usage"] == "off_session"
    # A second card reuses the customer.
    services.card_add_payment_method(user=user, payment_method_id="pm_card_mastercard")
    assert len(fake_stripe.calls("POST", "/v1/customers")) == 1


def test_declined_card_shows_stripes_message_and_is_not_saved(user, fake_stripe):
    with pytest.raises(ApplicationError) as exc:
        services.card_add_payment_method(user=user, payment_method_id="pm_card_chargeDeclined")
    assert exc.value.message == "Your card was declined."
    assert exc.value.status == 402
    assert exc.value.extra == {"decline_code": "generic_decline"}
    assert not Card.objects.filter(user=user).exists()

    with pytest.raises(ApplicationError, match="insufficient funds"):
        services.card_add_payment_method(user=user, payment_method_id="pm_card_chargeDeclinedInsufficientFunds")


def test_card_from_a_setup_intent_confirmed_in_the_browser(user, other_user, fake_stripe):
    intent = services.setup_intent_create(user=user)
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    fake_stripe.confirm_setup_intent_in_browser(intent.id, "pm_card_visa")

    # Someone else cannot claim this SetupIntent's card.
    with pytest.raises(ApplicationError) as exc:
        services.card_add_setup_intent(user=other_user, setup_intent_id=intent.id)
    assert exc.value.status == 404

    card = services.card_add_setup_intent(user=user, setup_intent_id=intent.id)
    assert (card.brand, card.last4) == ("visa", "4242")

    declined = services.setup_intent_create(user=user)
    fake_stripe.confirm_setup_intent_in_browser(declined.id, "pm_card_chargeDeclined")
    with pytest.raises(ApplicationError, match=r"^Your card was declined\.$"):
        services.card_add_setup_intent(user=user, setup_intent_id=declined.id)


def test_removing_a_card_detaches_it_at_stripe(user, fake_stripe):
    card = services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")
    services.card_remove(user=user, card_id=card.pk)
    assert fake_stripe.calls("POST", f"/v1/payment_methods/{card.payment_method_id}/detach")
    assert fake_stripe.payment_methods[card.payment_method_id]["customer"] is None
    assert not selectors.user_has_valid_card(user=user)


def _billed_subscription(subscriber, price_cents: int = 25, executions: int = 4):
    provider = make_user()
    service = make_service(provider, "sum-paid")
    plan = make_plan(service, PlanKind.PER_EXECUTION, price_cents)
    subscription = make_subscription(make_application(subscriber), service, plan)
    for _ in range(executions):
        record = UsageRecord.objects.create(subscription=subscription, status="SUCCEEDED", price_cents=price_cents)
        UsageRecord.objects.filter(pk=record.pk).update(recorded_at=last_month())
    return subscription


def test_invoice_is_charged_with_a_payment_intent_and_an_idempotency_key(user, fake_stripe):
    services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")
    subscription = _billed_subscription(user, price_cents=25, executions=4)

    services.billing_run()

    invoice = Invoice.objects.get(subscription=subscription)
    assert (invoice.status, invoice.amount_cents, invoice.executions) == (InvoiceStatus.PAID, 100, 4)
    [charge] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert charge.headers["Idempotency-Key"] == f"invoice-{invoice.id}-attempt-1"
    assert charge.params["amount"] == "100"
    assert charge.params["currency"] == "eur"
    assert charge.params["off_session"] == "true"
    assert charge.params["metadata"]["invoice_id"] == str(invoice.id)
    assert invoice.payment_intent_id in fake_stripe.payment_intents


def test_a_charge_repeated_after_a_crash_reuses_its_key_and_charges_once(user, fake_stripe):
    services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")
    subscription = _billed_subscription(user)
    services.billing_run()
    invoice = Invoice.objects.get(subscription=subscription)
    # As if the worker died after Stripe charged but before the answer was saved.
    Invoice.objects.filter(pk=invoice.pk).update(
        status=InvoiceStatus.PROCESSING, paid_at=None, charged_at=timezone.now() - timedelta(hours=1)
    )

    services.billing_run()

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    charges = fake_stripe.calls("POST", "/v1/payment_intents")
    assert len(charges) == 2
    assert {c.headers["Idempotency-Key"] for c in charges} == {f"invoice-{invoice.id}-attempt-1"}
    assert len(fake_stripe.payment_intents) == 1  # Stripe charged once


def test_a_declined_charge_fails_the_invoice_and_a_new_card_pays_it(user, fake_stripe):
    services.card_add_payment_method(user=user, payment_method_id="pm_card_chargeCustomerFail")
    subscription = _billed_subscription(user)
    services.billing_run()
    invoice = Invoice.objects.get(subscription=subscription)
    assert invoice.status == InvoiceStatus.FAILED
    assert invoice.failure_message == "Your card was declined."

    services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")
    invoice = services.invoice_pay_now(user=user, invoice_id=invoice.pk)
    assert invoice.status == InvoiceStatus.PAID
    keys = [c.headers["Idempotency-Key"] for c in fake_stripe.calls("POST", "/v1/payment_intents")]
    assert keys == [f"invoice-{invoice.id}-attempt-1", f"invoice-{invoice.id}-attempt-2"]


def test_wrong_api_key_is_a_clear_configuration_error(user, fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"
    with pytest.raises(ApplicationError) as exc:
        services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")
    assert exc.value.status == 503
    assert "STRIPE_SECRET_KEY" in exc.value.message


def test_unreachable_stripe_saves_nothing(user, settings):
    settings.PLANQK_PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens
    assert get_gateway().name == "stripe"
    with pytest.raises(ApplicationError) as exc:
        services.card_add_payment_method(user=user, payment_method_id="pm_card_visa")
    assert exc.value.status == 503
    assert not Card.objects.exists()


def test_misconfigured_gateways_are_reported_by_system_checks(settings):
    from payments.checks import payment_gateway_settings

    assert payment_gateway_settings() == []  # the simulator needs nothing
    settings.PLANQK_PAYMENT_GATEWAY = "paypal"
    assert [p.id for p in payment_gateway_settings()] == ["payments.E001"]
    settings.PLANQK_PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert [p.id for p in payment_gateway_settings()] == ["payments.E002", "payments.W001", "payments.W002"]
