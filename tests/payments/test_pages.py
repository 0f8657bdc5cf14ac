"""Settings → Payments pages: cards, invoices, earnings; Stripe Elements only with real keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payments import services
from payments.models import Card, Invoice, InvoiceStatus, UsageRecord
from payments.testing import add_test_card
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def test_empty_payments_page_says_what_to_do(logged_in):
    html = logged_in.get("/settings/payments/").content.decode()
    assert "No card yet" in html
    assert "No invoices" in html
    assert "4242 4242 4242 4242" in html  # the test cards are listed
    assert "js.stripe.com" not in html


def test_adding_a_card_goes_back_to_where_the_user_came_from(logged_in):
    response = logged_in.post(
        "/settings/payments/",
        {"number": "4242424242424242", "expiry": "12/40", "cvc": "123", "next": "/services/create/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/services/create/"
    elsewhere = logged_in.post(
        "/settings/payments/",
        {"number": "5555555555554444", "expiry": "12/40", "cvc": "123", "next": "https://evil.example.org/"},
    )
    assert elsewhere["Location"] == "/settings/payments/"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"number": "4000000000000002", "expiry": "12/40", "cvc": "123"}, "Your card was declined."),
        ({"number": "4242 4242 4242 4242", "expiry": "1240", "cvc": "123"}, "Enter the expiry as MM / YY"),
        ({"number": "abcd", "expiry": "12/40", "cvc": "123"}, "digits only"),
        ({"number": "", "expiry": "", "cvc": ""}, "This field is required."),
    ],
)
def test_card_form_errors_are_shown_not_500(logged_in, data, message):
    response = logged_in.post("/settings/payments/", data)
    assert response.status_code in (400, 402)
    assert message in response.content.decode()
    assert not Card.objects.exists()


def test_stripe_elements_only_with_real_keys(logged_in, settings):
    settings.PLANQK_PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_x"
    html = logged_in.get("/settings/payments/").content.decode()
    assert '<script src="https://js.stripe.com/v3/"></script>' in html
    assert 'data-publishable-key="pk_test_x"' in html
    assert 'name="number"' not in html  # card numbers never reach our server with Stripe
    refused = logged_in.post("/settings/payments/", {"number": "4242424242424242", "expiry": "12/40", "cvc": "1"})
    assert refused.status_code == 400


def test_removing_a_card_asks_first(logged_in, user, other_user):
    card = add_test_card(user)
    page = logged_in.get(f"/settings/payments/cards/{card.pk}/remove/")
    assert "your only valid card" in page.content.decode()
    assert Card.objects.filter(pk=card.pk).exists()
    logged_in.post(f"/settings/payments/cards/{card.pk}/remove/")
    assert not Card.objects.filter(pk=card.pk).exists()
    theirs = add_test_card(other_user)
    assert logged_in.post(f"/settings/payments/cards/{theirs.pk}/remove/").status_code == 404


def test_invoice_pages_and_pay_now(logged_in, user):
    provider = make_user("provider@example.com")
    service = make_service(provider, "sum")
    subscription = make_subscription(make_application(user), service, make_plan(service, PlanKind.MONTHLY, 1500))
    # A fixed clock: subscribed in May, billed in mid-June, so exactly one month is invoiced on any
    # day the tests run (back-dating from today spanned two months in the first days of one).
    billed_at = datetime(2026, 6, 15, 12, tzinfo=UTC)
    type(subscription).objects.filter(pk=subscription.pk).update(created_at=datetime(2026, 5, 5, tzinfo=UTC))
    UsageRecord.objects.create(subscription=subscription, status="SUCCEEDED")
    services.billing_run(now=billed_at)
    invoice = Invoice.objects.get()
    assert invoice.period_start == datetime(2026, 5, 1, tzinfo=UTC)
    assert invoice.status == InvoiceStatus.FAILED  # no card

    html = logged_in.get("/settings/payments/invoices/").content.decode()
    assert invoice.number in html
    detail = logged_in.get(f"/settings/payments/invoices/{invoice.pk}/").content.decode()
    assert "15.00 EUR" in detail
    assert "Add a card in Settings" in detail
    assert "Pay now" in detail

    add_test_card(user)
    response = logged_in.post(f"/settings/payments/invoices/{invoice.pk}/pay/", follow=True)
    assert "is paid" in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    again = logged_in.post(f"/settings/payments/invoices/{invoice.pk}/pay/", follow=True)
    assert "only unpaid invoices can be paid" in again.content.decode()

    logged_in.force_login(provider)
    earnings = logged_in.get("/settings/payments/earnings/").content.decode()
    assert invoice.number in earnings
    assert "15.00 EUR" in earnings
    # The provider sees the invoice but cannot pay it.
    assert "Pay now" not in logged_in.get(f"/settings/payments/invoices/{invoice.pk}/").content.decode()
    assert logged_in.post(f"/settings/payments/invoices/{invoice.pk}/pay/").status_code == 404


def test_pages_need_login(client, db):
    response = client.get("/settings/payments/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_a_misconfigured_gateway_is_a_clear_page_not_a_500(logged_in, settings):
    settings.PLANQK_PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = ""
    response = logged_in.get("/settings/payments/")
    assert response.status_code == 503
    assert "STRIPE_SECRET_KEY" in response.content.decode()
