"""The scheduled billing task runs in a real Celery worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from payments.models import Invoice, InvoiceStatus, UsageRecord
from payments.tasks import run_billing
from payments.testing import add_test_card
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)


def test_billing_is_scheduled():
    entry = settings.CELERY_BEAT_SCHEDULE["payments-billing"]
    assert entry["task"] == "payments.tasks.run_billing"
    assert run_billing.name == entry["task"]


def test_the_billing_task_invoices_and_charges_in_a_worker(celery_worker):
    subscriber = make_user("subscriber@example.com")
    add_test_card(subscriber)
    service = make_service(make_user("provider@example.com"), "sum")
    subscription = make_subscription(
        make_application(subscriber), service, make_plan(service, PlanKind.PER_EXECUTION, 70)
    )
    record = UsageRecord.objects.create(subscription=subscription, status="SUCCEEDED", price_cents=70)
    UsageRecord.objects.filter(pk=record.pk).update(recorded_at=timezone.now() - timedelta(days=40))

    run_billing.delay()

    deadline = time.monotonic() + 60  # a bound on waiting, not an assertion on speed
    while not Invoice.objects.filter(status=InvoiceStatus.PAID).exists():
        assert time.monotonic() < deadline, celery_worker.log()[-3000:]
        time.sleep(0.2)
    invoice = Invoice.objects.get()
    assert (invoice.amount_cents, invoice.executions) == (70, 1)
