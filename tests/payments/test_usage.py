"""Usage (subscriber), earnings (provider) and invoices agree for the same period: each is checked
against numbers this test computes itself from the usage records it wrote, on a fixed clock."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.test import Client

from applications.models import Subscription
from payments import services
from payments.models import UsageRecord
from payments.templatetags.money import money
from payments.usage import PROVIDER, SUBSCRIBER, usage_report
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_application, make_plan, make_service, make_subscription

pytestmark = pytest.mark.django_db

MARCH = datetime(2025, 3, 1, tzinfo=UTC)


def at(subscription, moment: datetime, price_cents: int, duration_ms: int = 1000, status: str = "SUCCEEDED"):
    row = UsageRecord.objects.create(
        subscription=subscription, status=status, price_cents=price_cents, duration_ms=duration_ms
    )
    UsageRecord.objects.filter(pk=row.pk).update(recorded_at=moment)
    return row


@pytest.fixture
def market(user):
    """A provider with three services; ``user`` subscribes two applications on four plans."""
    provider = make_user("provider@example.com")
    sum_service, qaoa, bell = (make_service(provider, name) for name in ("sum", "qaoa", "bell"))
    lab, notebook = make_application(user, "lab"), make_application(user, "notebook")
    subs = {
        "lab-sum": make_subscription(lab, sum_service, make_plan(sum_service, PlanKind.PER_EXECUTION, 50)),
        "notebook-qaoa": make_subscription(notebook, qaoa, make_plan(qaoa, PlanKind.PER_EXECUTION, 30)),
        "lab-bell": make_subscription(lab, bell, make_plan(bell, PlanKind.MONTHLY, 900)),
        "notebook-sum": make_subscription(notebook, sum_service, make_plan(sum_service, PlanKind.FREE, 0, "Free")),
    }
    Subscription.objects.filter(pk__in=[s.pk for s in subs.values()]).update(
        created_at=datetime(2025, 2, 10, tzinfo=UTC)
    )
    written: list[tuple[str, datetime, int, int]] = [
        ("lab-sum", datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC), 50, 900),  # February
        ("lab-sum", MARCH, 50, 1200),
        ("lab-sum", datetime(2025, 3, 3, 10, tzinfo=UTC), 0, 10),  # cancelled before it started
        ("lab-sum", datetime(2025, 3, 14, 9, tzinfo=UTC), 80, 2000),  # after a price change
        ("lab-sum", datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC), 50, 300),
        ("notebook-qaoa", datetime(2025, 3, 14, 11, tzinfo=UTC), 30, 4000),
        ("notebook-qaoa", datetime(2025, 3, 20, tzinfo=UTC), 30, 5000),
        ("notebook-sum", datetime(2025, 3, 20, tzinfo=UTC), 0, 700),
        ("lab-bell", datetime(2025, 3, 21, tzinfo=UTC), 0, 800),
        ("notebook-qaoa", datetime(2025, 4, 1, tzinfo=UTC), 30, 100),  # April
    ]
    for key, moment, price, ms in written:
        at(subs[key], moment, price, ms)
    return provider, subs, written


def expected_march(subs, written) -> dict:
    """The test's own arithmetic: what each subscription owes for March."""
    march = [
        (k, p, ms)
        for k, moment, p, ms in written
        if datetime(2025, 3, 1, tzinfo=UTC) <= moment < datetime(2025, 4, 1, tzinfo=UTC)
    ]
    owed = {}
    for key, subscription in subs.items():
        rows = [(p, ms) for k, p, ms in march if k == key]
        flat = subscription.price_cents if subscription.plan_kind == PlanKind.MONTHLY else 0
        owed[key] = {
            "executions": len(rows),
            "run_ms": sum(ms for _, ms in rows),
            "cents": sum(p for p, _ in rows) + flat,
        }
    return owed


def test_usage_earnings_and_invoices_agree_for_one_period(user, market):
    provider, subs, written = market
    owed = expected_march(subs, written)
    assert owed["lab-sum"]["cents"] == 180
    assert owed["lab-bell"]["cents"] == 900
    total = sum(row["cents"] for row in owed.values())
    executions = sum(row["executions"] for row in owed.values())
    assert (total, executions) == (1140, 8)

    usage = usage_report(user=user, role=SUBSCRIBER, period_start=MARCH)
    earnings = usage_report(user=provider, role=PROVIDER, period_start=MARCH)
    by_key = {key: s.pk for key, s in subs.items()}
    for report in (usage, earnings):
        lines = {line.subscription_id: line for line in report.lines}
        for key, row in owed.items():
            line = lines[by_key[key]]
            assert (line.executions, line.duration_ms, line.total_cents) == (
                row["executions"],
                row["run_ms"],
                row["cents"],
            )
        assert (report.total_cents, report.executions) == (total, executions)
        assert sum(day.cents for day in report.days) + 900 == total  # the flat price is not a day's
        assert len(report.days) == 31

    # The invoices of the closed period, made by the billing code, bill the same amounts.
    for key, subscription in subs.items():
        invoice = services.invoice_create(subscription=subscription, period_start=MARCH)
        assert invoice is not None
        assert (invoice.amount_cents, invoice.executions) == (owed[key]["cents"], owed[key]["executions"]), key

    # The pages, the CSV and the REST API show the same numbers.
    client = Client()
    client.force_login(user)
    page = client.get("/settings/payments/usage/?period=2025-03").content.decode()
    assert money(total) in page
    assert f'data-testid="usage-executions">{executions}<' in page
    rows = list(
        csv.DictReader(io.StringIO(client.get("/settings/payments/usage/usage.csv?period=2025-03").content.decode()))
    )
    assert sum(int(row["price_cents"]) for row in rows) == total
    assert len([row for row in rows if row["job_id"] or row["status"] != "MONTHLY_FLAT_PRICE"]) == executions
    client.force_login(provider)
    page = client.get("/settings/payments/earnings/?period=2025-03").content.decode()
    assert f'data-testid="earnings-total">{money(total)}<' in page
    rows = list(
        csv.DictReader(io.StringIO(client.get("/settings/payments/earnings/usage.csv?period=2025-03").content.decode()))
    )
    assert sum(int(row["price_cents"]) for row in rows) == total
    invoice_page = client.get("/settings/payments/earnings/").content.decode()
    assert money(owed["lab-sum"]["cents"]) in invoice_page


def test_the_rest_api_gives_the_pages_numbers(user, market, api_client):
    _provider, subs, written = market
    owed = expected_march(subs, written)
    body = api_client.get("/api/v1/payments/usage/?period=2025-03").json()
    assert body["period_start"].startswith("2025-03-01")
    assert body["role"] == "subscriber"
    assert body["total_cents"] == sum(row["cents"] for row in owed.values())
    lines = {line["subscription_id"]: line for line in body["subscriptions"]}
    assert lines[str(subs["lab-sum"].pk)]["total_cents"] == 180
    assert lines[str(subs["lab-sum"].pk)]["billable_executions"] == 3
    assert lines[str(subs["lab-bell"].pk)]["flat_cents"] == 900
    assert (
        api_client.get("/api/v1/payments/earnings/summary/?period=2025-03").json()["total_cents"] == 0
    )  # not a provider


def test_another_users_usage_is_not_shown(user, market, other_user):
    report = usage_report(user=other_user, role=SUBSCRIBER, period_start=MARCH)
    assert report.lines == []
    assert report.total_cents == 0
    client = Client()
    client.force_login(other_user)
    assert 'data-testid="no-usage"' in client.get("/settings/payments/usage/?period=2025-03").content.decode()


def test_csv_names_cannot_become_formulas(user, market):
    _, subs, _ = market
    application = subs["lab-sum"].application
    application.name = "=HYPERLINK(1)"
    application.save()
    client = Client()
    client.force_login(user)
    text = client.get("/settings/payments/usage/usage.csv?period=2025-03").content.decode()
    assert "'=HYPERLINK(1)" in text
