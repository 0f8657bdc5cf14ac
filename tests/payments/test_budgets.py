"""Monthly budgets: admission refuses a billable execution that would pass a cap, on every road;
the subscriber is told at 80 % and 100 % once, by e-mail and on the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from jobs.admission import execution_admit
from jobs.models import Job, JobStatus
from payments import budgets
from payments.models import BudgetNotice, UsageRecord
from payments.services import billing_period
from payments.testing import add_test_card
from tests.applications.conftest import fetch_token, make_app, make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

BODY = {"data": {"values": [1, 2]}, "params": {"round_off": False}}


def record(subscription, price_cents: int, moment: datetime | None = None) -> UsageRecord:
    row = UsageRecord.objects.create(subscription=subscription, status="SUCCEEDED", price_cents=price_cents)
    if moment is not None:
        UsageRecord.objects.filter(pk=row.pk).update(recorded_at=moment)
    return row


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


@pytest.fixture
def paid(user, provider):
    """The subscriber ``user`` with a card, subscribed at 0.50 per execution (executions stay PENDING)."""
    from applications.services import subscription_create

    add_test_card(user)
    target = make_service(provider, name="paid", sample=None, plan_kind="PER_EXECUTION", price_cents=50)
    app = make_app(user)
    subscription = subscription_create(application=app.application, service=target.service, plan=target.plan)
    return app, target, subscription


def admit(user, target, subscription=None):
    return execution_admit(
        service_version=target.version, owner=user, data=BODY["data"], params=BODY["params"], subscription=subscription
    )


def test_a_subscription_cap_counts_running_executions_so_a_burst_cannot_pass_it(user, paid):
    _, target, subscription = paid
    subscription.monthly_budget_cents = 100
    subscription.save()
    admit(user, target)
    admit(user, target)  # 0.50 + 0.50 = the cap exactly: allowed
    with pytest.raises(Exception) as refused:
        admit(user, target)
    exc = refused.value
    assert (exc.code, exc.status) == ("payments:budget-exceeded", 402)
    assert exc.extra["budget"] == "subscription"
    assert (exc.extra["budget_cents"], exc.extra["period_total_cents"], exc.extra["price_cents"]) == (100, 100, 50)
    assert "1.00 EUR" in exc.message
    assert Job.objects.filter(subscription=subscription).count() == 2


def test_spent_executions_of_this_period_count_and_last_months_do_not(user, paid):
    _, target, subscription = paid
    subscription.monthly_budget_cents = 150
    subscription.save()
    start, _ = billing_period(timezone.now())
    record(subscription, 50, start - timedelta(seconds=1))  # last month
    record(subscription, 50, start)
    record(subscription, 50)
    admit(user, target)  # 1.00 spent + 0.50 = 1.50
    with pytest.raises(Exception) as refused:
        admit(user, target)
    assert refused.value.extra["period_total_cents"] == 150


def test_the_budget_arithmetic_on_a_fixed_clock(user, paid):
    _, _, subscription = paid
    subscription.monthly_budget_cents = 200
    subscription.save()
    march = datetime(2025, 3, 10, 12, tzinfo=UTC)
    record(subscription, 50, datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC))
    record(subscription, 80, datetime(2025, 3, 1, tzinfo=UTC))
    record(subscription, 50, datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC))
    record(subscription, 50, datetime(2025, 4, 1, tzinfo=UTC))
    state = budgets.subscription_budget(subscription=subscription, now=march)
    assert (state.spent_cents, state.running_cents, state.cap_cents) == (130, 0, 200)
    assert state.period_start == datetime(2025, 3, 1, tzinfo=UTC)
    budgets.budget_check(subscription=subscription, price_cents=70, now=march)
    with pytest.raises(Exception):
        budgets.budget_check(subscription=subscription, price_cents=71, now=march)


def test_an_application_cap_covers_all_its_subscriptions(user, provider, paid):
    from applications.services import subscription_create

    app, _target, subscription = paid
    other = make_service(provider, name="other", sample=None, plan_kind="PER_EXECUTION", price_cents=30)
    second = subscription_create(application=app.application, service=other.service, plan=other.plan)
    app.application.monthly_budget_cents = 100
    app.application.save()
    record(subscription, 50)
    admit(user, other)  # 0.50 + 0.30
    with pytest.raises(Exception) as refused:
        admit(user, other)  # + 0.30 = 1.10
    assert refused.value.extra["budget"] == "application"
    assert refused.value.extra["period_total_cents"] == 80
    assert Job.objects.filter(subscription=second).count() == 1


def test_free_executions_pass_a_zero_cap_and_owners_have_no_budget(user, provider):
    from applications.services import subscription_create

    target = make_service(provider, name="free", sample=None)
    app = make_app(user)
    subscription = subscription_create(application=app.application, service=target.service, plan=target.plan)
    subscription.monthly_budget_cents = 0
    subscription.save()
    app.application.monthly_budget_cents = 0
    app.application.save()
    assert admit(user, target).status == JobStatus.PENDING
    assert admit(provider, target).subscription is None


def test_notices_at_80_and_100_percent_come_once_by_mail_and_on_the_page(user, paid, client):
    app, _, subscription = paid
    subscription.monthly_budget_cents = 200
    subscription.save()
    record(subscription, 150)
    assert budgets.budget_notices_check(subscription_id=subscription.pk) == []  # 75 %
    record(subscription, 10)
    [notice] = budgets.budget_notices_check(subscription_id=subscription.pk)  # 80 %
    assert (notice.percent, notice.total_cents, notice.cap_cents) == (80, 160, 200)
    assert budgets.budget_notices_check(subscription_id=subscription.pk) == []
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [user.email]
    assert "80 %" in mail.outbox[0].subject
    assert "1.60 EUR" in mail.outbox[0].body
    record(subscription, 40)
    [notice] = budgets.budget_notices_check(subscription_id=subscription.pk)
    assert notice.percent == 100
    assert BudgetNotice.objects.count() == 2
    assert len(mail.outbox) == 2
    client.force_login(user)
    page = client.get(f"/applications/{app.application.pk}/").content.decode()
    assert "100 % of its monthly budget" in page


def test_a_metered_execution_triggers_the_notice(user, paid, django_capture_on_commit_callbacks):
    _, target, subscription = paid
    subscription.monthly_budget_cents = 50
    subscription.save()
    job = admit(user, target)
    Job.objects.filter(pk=job.pk).update(runtime_starts=1, started_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        Job.objects.finish(job.pk, status=JobStatus.SUCCEEDED, leaving=(JobStatus.PENDING,))
    assert UsageRecord.objects.get(job=job).price_cents == 50
    assert BudgetNotice.objects.filter(subscription=subscription, percent=100).exists()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("road", ["gateway", "rest", "create-job"])
def test_the_cap_refuses_with_402_on_every_road(road, user, paid, api_client):
    app, target, subscription = paid
    subscription.monthly_budget_cents = 50
    subscription.save()
    record(subscription, 50)
    before = Job.objects.count()
    if road == "gateway":
        client = Client()
        token = fetch_token(client, app)
        response = client.post(target.path, BODY, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 402
        assert response.json()["code"] == "payments:budget-exceeded"
        assert response.json()["budget_cents"] == 50
    elif road == "rest":
        response = api_client.post("/api/v1/jobs/", {"service_id": str(target.service.pk), **BODY}, format="json")
        assert response.status_code == 402
        assert response.json()["code"] == "payments:budget-exceeded"
        assert response.json()["period_total_cents"] == 50
    else:
        client = Client()
        client.force_login(user)
        response = client.post(
            "/jobs/new/",
            {
                "service": str(target.service.pk),
                "data_mode": "json",
                "data": '{"values": [1, 2]}',
                "params_mode": "json",
                "params": "{}",
            },
        )
        assert "monthly budget of 0.50 EUR" in response.content.decode()
    assert Job.objects.count() == before
