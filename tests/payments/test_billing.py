"""Billing: invoices total exactly the metered executions of their period; charges are idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from payments import services
from payments.models import Invoice, InvoiceStatus, SimulatorCharge, UsageRecord
from payments.testing import add_test_card
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db


def at(moment: datetime, subscription, price_cents: int, status: str = "SUCCEEDED") -> UsageRecord:
    record = UsageRecord.objects.create(subscription=subscription, status=status, price_cents=price_cents)
    UsageRecord.objects.filter(pk=record.pk).update(recorded_at=moment)
    return record


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


@pytest.fixture
def per_execution(user, provider):
    service = make_service(provider, "qaoa")
    plan = make_plan(service, PlanKind.PER_EXECUTION, 50)
    return make_subscription(make_application(user), service, plan)


def test_billing_period_is_the_calendar_month_in_utc():
    start, end = services.billing_period(datetime(2024, 2, 29, 23, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    start, end = services.billing_period(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def test_invoice_totals_exactly_the_executions_of_its_period(user, per_execution):
    add_test_card(user)
    this_start, _ = services.billing_period(timezone.now())
    last_start, _ = services.billing_period(this_start - timedelta(days=1))
    before_start, _ = services.billing_period(last_start - timedelta(days=1))
    # Last month: three executions at 0.50, one recorded at 0.80 after a price change, one at the
    # very first and one at the very last microsecond of the month.
    at(last_start, per_execution, 50)
    at(last_start + timedelta(days=3), per_execution, 50, status="FAILED")
    at(last_start + timedelta(days=9), per_execution, 80)
    at(this_start - timedelta(microseconds=1), per_execution, 50)
    # Neighbours that belong to other periods.
    at(before_start + timedelta(days=2), per_execution, 50)
    at(this_start, per_execution, 50)

    result = services.billing_run(now=this_start + timedelta(hours=2))

    assert result["created"] == 2
    last = Invoice.objects.get(subscription=per_execution, period_start=last_start)
    assert last.executions == 4
    assert last.amount_cents == 50 + 50 + 80 + 50
    assert sorted((line.quantity, line.unit_price_cents, line.amount_cents) for line in last.lines.all()) == [
        (1, 80, 80),
        (3, 50, 150),
    ]
    assert last.status == InvoiceStatus.PAID
    assert SimulatorCharge.objects.get(payment_intent_id=last.payment_intent_id).amount_cents == 230
    before = Invoice.objects.get(subscription=per_execution, period_start=before_start)
    assert (before.executions, before.amount_cents) == (1, 50)
    # The open month is not billed yet.
    assert UsageRecord.objects.filter(subscription=per_execution, invoice__isnull=True).count() == 1

    # Running again bills nothing twice and charges nothing again.
    charges = SimulatorCharge.objects.count()
    assert services.billing_run(now=this_start + timedelta(hours=3))["created"] == 0
    assert Invoice.objects.filter(subscription=per_execution).count() == 2
    assert SimulatorCharge.objects.count() == charges


def test_usage_of_the_last_hour_of_a_month_waits_for_the_grace_period(user, per_execution):
    this_start, _ = services.billing_period(timezone.now())
    at(this_start - timedelta(minutes=5), per_execution, 50)
    services.billing_run(now=this_start + timedelta(minutes=10))
    assert not Invoice.objects.exists()
    services.billing_run(now=this_start + services.BILLING_GRACE + timedelta(minutes=1))
    assert Invoice.objects.get().amount_cents == 50


def test_monthly_plan_pays_its_flat_price_for_each_month_it_was_active(user, provider):
    add_test_card(user)
    service = make_service(provider, "anneal")
    plan = make_plan(service, PlanKind.MONTHLY, 2000)
    subscription = make_subscription(make_application(user), service, plan)
    this_start, _ = services.billing_period(timezone.now())
    two_ago, _ = services.billing_period(this_start - timedelta(days=40))
    type(subscription).objects.filter(pk=subscription.pk).update(created_at=two_ago + timedelta(days=10))
    at(two_ago + timedelta(days=12), subscription, 0)

    services.billing_run(now=this_start + timedelta(hours=2))

    invoices = Invoice.objects.filter(subscription=subscription).order_by("period_start")
    assert [(i.period_start, i.amount_cents, i.executions) for i in invoices] == [
        (two_ago, 2000, 1),
        (services.billing_period(this_start - timedelta(days=1))[0], 2000, 0),
    ]
    assert all(i.status == InvoiceStatus.PAID for i in invoices)


def test_free_plans_are_never_invoiced(user, provider):
    service = make_service(provider, "free-sum")
    subscription = make_subscription(make_application(user), service, make_plan(service))
    at(timezone.now() - timedelta(days=62), subscription, 0)
    services.billing_run()
    assert not Invoice.objects.exists()


def test_without_a_card_the_invoice_fails_and_is_paid_once_a_card_is_added(user, per_execution, provider):
    at(timezone.now() - timedelta(days=40), per_execution, 50)
    services.billing_run()
    invoice = Invoice.objects.get()
    assert invoice.status == InvoiceStatus.FAILED
    assert "Add a card" in invoice.failure_message
    assert invoice.attempts == 0  # nothing was sent to the gateway

    add_test_card(user)
    assert services.invoice_retry_failed(user_id=user.pk) == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.idempotency_key == f"invoice-{invoice.id}-attempt-1"
    # The provider sees it as earnings; the subscriber as an invoice.
    from payments import selectors

    assert [*selectors.earnings_list(user=provider)] == [invoice]
    assert selectors.earnings_totals(user=provider)["paid"] == 50
    assert [*selectors.invoice_list(user=user)] == [invoice]
    assert selectors.invoice_get(user=make_user(), invoice_id=invoice.pk) is None


def test_a_card_that_declines_charges_fails_the_invoice_with_stripes_message(user, per_execution):
    add_test_card(user, "4000000000000341")
    at(timezone.now() - timedelta(days=40), per_execution, 50)
    services.billing_run()
    invoice = Invoice.objects.get()
    assert invoice.status == InvoiceStatus.FAILED
    assert invoice.failure_message == "Your card was declined."
    # Paying again with the same card is a new attempt with a new key, and fails again.
    invoice = services.invoice_pay_now(user=user, invoice_id=invoice.pk)
    assert invoice.attempts == 2
    assert SimulatorCharge.objects.filter(succeeded=False).count() == 2


def test_simulator_charges_are_idempotent_by_key(user):
    from payments.gateways import get_gateway

    gateway = get_gateway()
    pm = gateway.payment_method_for_test_card(number="4242424242424242")
    first = gateway.charge(customer_id="cus_x", payment_method_id=pm, amount_cents=100, currency="eur",
                           idempotency_key="k-1", description="", metadata={})  # fmt: skip
    again = gateway.charge(customer_id="cus_x", payment_method_id=pm, amount_cents=100, currency="eur",
                           idempotency_key="k-1", description="", metadata={})  # fmt: skip
    assert first == again
    assert SimulatorCharge.objects.count() == 1
