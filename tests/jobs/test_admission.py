"""Admission: every road into an execution (gateway, REST, Create Job, Run again) obeys the same rules.

Each rule below was once enforced on the gateway only. Each test tries the rule on every road and
asserts what the people involved see afterwards: which jobs exist, what the subscriber is billed.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from jobs import engine
from jobs.admission import execution_admit
from jobs.models import IllegalTransition, Job, JobSource, JobStatus
from payments.models import UsageRecord
from tests.applications.conftest import fetch_token, make_app, make_service, subscribe
from tests.conftest import api_client_for, make_user
from tests.jobs.conftest import SUM_DATA, wait_final, wait_for

ROADS = ("gateway", "rest", "page")


def _gateway(target, token: str, body: dict) -> tuple[int, str]:
    response = Client().post(
        target.path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    payload = response.json()
    return response.status_code, payload.get("code", payload.get("status", ""))


def _rest(target, user, body: dict) -> tuple[int, str]:
    response = api_client_for(user).post("/api/v1/jobs/", {"service_id": str(target.service.pk), **body}, format="json")
    payload = response.json()
    return response.status_code, payload.get("code", payload.get("status", ""))


def _page(target, user, body: dict) -> tuple[int, str]:
    browser = Client()
    browser.force_login(user)
    response = browser.post(
        "/jobs/new/",
        {
            "service": str(target.service.pk),
            "data_mode": "json",
            "data": json.dumps(body.get("data", {})),
            "params_mode": "json",
            "params": json.dumps(body.get("params", {})),
        },
    )
    # A page answers 302 to the new job, or the form again (200) with the reason.
    return response.status_code, response.content.decode()


def start_by(road: str, *, target, user, token: str, body: dict | None = None) -> tuple[int, str]:
    body = body if body is not None else {"data": SUM_DATA}
    if road == "gateway":
        return _gateway(target, token, body)
    if road == "rest":
        return _rest(target, user, body)
    return _page(target, user, body)


@pytest.fixture
def subscriber(db):
    return make_user("subscriber@example.com")


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


def _subscribed(provider, subscriber, **plan):
    target = make_service(provider, name=plan.pop("name", "sum"), **plan)
    app = make_app(subscriber)
    subscription = subscribe(app, target)
    return target, subscription, fetch_token(Client(), app)


# --- 1. who may run what -----------------------------------------------------------------------


@pytest.mark.parametrize("lifecycle_change", ["unpublish", "internal-only"])
def test_a_former_subscriber_cannot_run_an_unpublished_service_on_any_road(provider, subscriber, lifecycle_change):
    from services.services import service_publish_internal, service_unpublish

    target, _subscription, token = _subscribed(provider, subscriber)
    earlier = _rest(target, subscriber, {"data": SUM_DATA})
    assert earlier[0] == 201
    earlier_job = Job.objects.get()
    change = service_unpublish if lifecycle_change == "unpublish" else service_publish_internal
    change(service=target.service)

    for road in ROADS:
        status, answer = start_by(road, target=target, user=subscriber, token=token)
        if road == "page":
            assert status == 200  # the form again: the service is not offered any more
        else:
            assert (status, answer) == (403, "service:not-published"), road
    browser = Client()
    browser.force_login(subscriber)
    offered = browser.get("/jobs/new/").content.decode()
    assert str(target.service.pk) not in offered
    again = browser.get(f"/jobs/new/?from={earlier_job.pk}").content.decode()
    assert f'value="{target.service.pk}" selected' not in again
    assert Job.objects.count() == 1  # only the one from before
    # The owner still runs their own service, on every road but the gateway (no application).
    assert _rest(target, provider, {"data": SUM_DATA})[0] == 201
    assert _page(target, provider, {"data": SUM_DATA})[0] == 302


def test_someone_without_a_subscription_cannot_run_a_published_service(provider, subscriber):
    target = make_service(provider)
    assert _rest(target, subscriber, {"data": SUM_DATA})[0] == 404  # not among the services they can use
    with pytest.raises(Exception) as raised:
        execution_admit(service_version=target.version, owner=subscriber, data=SUM_DATA)
    assert raised.value.code == "subscription:required"
    assert raised.value.status == 403
    assert not Job.objects.exists()


def test_a_retired_version_cannot_be_run_on_any_road(provider, subscriber):
    from django.utils import timezone

    target, _subscription, token = _subscribed(provider, subscriber)
    type(target.version).objects.filter(pk=target.version.pk).update(unpublished_at=timezone.now())
    assert _gateway(target, token, {"data": SUM_DATA}) == (409, "service:not-callable")
    with pytest.raises(Exception) as raised:
        execution_admit(service_version=type(target.version).objects.get(pk=target.version.pk), owner=subscriber)
    assert raised.value.code == "service:not-callable"
    assert not Job.objects.exists()


# --- 2. the plan's limits are shared by every road -------------------------------------------


def _fresh_minute() -> None:
    # The counter's window is a calendar minute: start early in one so all requests share it.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def test_requests_per_minute_count_across_roads(provider, subscriber):
    target, subscription, token = _subscribed(provider, subscriber, requests_per_minute=2, max_concurrent=0)
    _fresh_minute()
    assert _rest(target, subscriber, {"data": SUM_DATA})[0] == 201
    assert _page(target, subscriber, {"data": SUM_DATA})[0] == 302
    status, code = _gateway(target, token, {"data": SUM_DATA})
    assert (status, code) == (429, "rate-limit:requests-per-minute")
    rest = api_client_for(subscriber).post(
        "/api/v1/jobs/", {"service_id": str(target.service.pk), "data": SUM_DATA}, format="json"
    )
    assert rest.status_code == 429
    assert rest.json()["code"] == "rate-limit:requests-per-minute"
    assert int(rest["Retry-After"]) >= 1
    status, page = _page(target, subscriber, {"data": SUM_DATA})
    assert status == 200
    assert "requests per minute" in page
    assert Job.objects.filter(subscription=subscription).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_executions_count_across_roads_with_a_real_worker(celery_worker, provider, subscriber):
    target, subscription, token = _subscribed(
        provider, subscriber, name="slow", sample="slow", requests_per_minute=0, max_concurrent=1
    )
    long_run = {"data": {}, "params": {"steps": 60, "sleep": 0.5}}
    assert _rest(target, subscriber, long_run)[0] == 201
    running = Job.objects.get()
    wait_for(lambda: Job.objects.get(pk=running.pk).status == JobStatus.RUNNING)
    assert _gateway(target, token, long_run) == (429, "rate-limit:concurrent-executions")
    assert _rest(target, subscriber, long_run) == (429, "rate-limit:concurrent-executions")
    status, page = _page(target, subscriber, long_run)
    assert status == 200
    assert "concurrent executions" in page
    assert Job.objects.filter(subscription=subscription).count() == 1
    # Once it ends, the slot is free again: for any road.
    Job.objects.request_cancel(running.pk)
    wait_final(running)
    assert _gateway(target, token, {"data": {}, "params": {"steps": 0}})[0] == 201


def test_the_owner_quota_applies_to_own_runs(provider, settings):
    settings.PLANQK_OWNER_MAX_CONCURRENT = 2
    target = make_service(provider)
    for _ in range(2):
        assert _rest(target, provider, {"data": SUM_DATA})[0] == 201
    assert _rest(target, provider, {"data": SUM_DATA}) == (429, "rate-limit:concurrent-executions")
    assert "concurrent" in _page(target, provider, {"data": SUM_DATA})[1]
    assert Job.objects.count() == 2


# --- 3. billing: what started is billable, also when cancelled later ----------------------------


@pytest.mark.django_db(transaction=True)
def test_an_execution_cancelled_after_it_started_is_charged(celery_worker, provider, subscriber):
    from payments.testing import add_test_card

    add_test_card(subscriber)
    target, _subscription, token = _subscribed(
        provider, subscriber, name="slow", sample="slow", plan_kind="PER_EXECUTION", price_cents=70
    )
    response = Client().post(
        target.path,
        json.dumps({"data": {}, "params": {"steps": 60, "sleep": 0.5}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201
    job = Job.objects.get(pk=response.json()["id"])
    wait_for(lambda: job.interim_results.exists() or Job.objects.filter(pk=job.pk, runtime_starts=1).exists())
    cancelled = Client().put(f"{target.path}{job.pk}/cancel", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert cancelled.status_code == 200
    job = wait_final(job)
    assert job.status == JobStatus.CANCELLED
    usage = UsageRecord.objects.get(job=job)
    assert (usage.status, usage.price_cents) == ("CANCELLED", 70)
    assert usage.duration_ms > 0


def test_an_execution_cancelled_before_it_started_costs_nothing(provider, subscriber):
    from payments.testing import add_test_card

    add_test_card(subscriber)
    target, subscription, _token = _subscribed(provider, subscriber, plan_kind="PER_EXECUTION", price_cents=70)
    job = execution_admit(service_version=target.version, owner=subscriber, data=SUM_DATA, source=JobSource.API)
    assert job.subscription_id == subscription.pk
    Job.objects.request_cancel(job.pk)
    usage = UsageRecord.objects.get(job=job)
    assert (usage.status, usage.price_cents) == ("CANCELLED", 0)


# --- 4. payment standing ------------------------------------------------------------------------


def test_a_paid_subscription_without_a_card_is_not_served_on_any_road(provider, subscriber):
    from payments.services import card_remove
    from payments.testing import add_test_card

    card = add_test_card(subscriber)
    target, _subscription, token = _subscribed(provider, subscriber, plan_kind="MONTHLY", price_cents=900)
    assert _rest(target, subscriber, {"data": SUM_DATA})[0] == 201
    card_remove(user=subscriber, card_id=card.pk)
    for road in ROADS:
        status, answer = start_by(road, target=target, user=subscriber, token=token)
        if road == "page":
            assert status == 200
            assert "Settings → Payments" in answer
        else:
            assert (status, answer) == (402, "payments:card-required"), road
    assert Job.objects.count() == 1
    add_test_card(subscriber)
    assert _gateway(target, token, {"data": SUM_DATA})[0] == 201


def test_a_failed_invoice_stops_paid_plans_until_it_is_paid(provider, subscriber):
    from django.utils import timezone

    from payments.models import Invoice, InvoiceStatus
    from payments.testing import add_test_card

    add_test_card(subscriber)
    target, subscription, token = _subscribed(provider, subscriber, plan_kind="MONTHLY", price_cents=900)
    invoice = Invoice.objects.create(
        number="INV-TEST-1",
        subscriber=subscriber,
        provider=provider,
        subscription=subscription,
        service=target.service,
        service_name="sum",
        application_name="my app",
        plan_name="Standard",
        plan_kind="MONTHLY",
        period_start=timezone.now(),
        period_end=timezone.now(),
        amount_cents=900,
        currency="eur",
        status=InvoiceStatus.FAILED,
    )
    assert _gateway(target, token, {"data": SUM_DATA}) == (402, "payments:invoice-unpaid")
    assert _rest(target, subscriber, {"data": SUM_DATA}) == (402, "payments:invoice-unpaid")
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID)
    assert _rest(target, subscriber, {"data": SUM_DATA})[0] == 201


# --- 5. every final state is metered; illegal transitions are refused --------------------------


def test_expired_pending_jobs_are_metered(provider, subscriber, settings):
    from datetime import timedelta

    from django.utils import timezone

    target, subscription, _token = _subscribed(provider, subscriber)
    job = execution_admit(service_version=target.version, owner=subscriber, data=SUM_DATA)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=2), enqueue_count=2)
    assert engine.job_reap()["expired"] == 1
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "platform:not-started")
    usage = UsageRecord.objects.get(job=job)
    assert (usage.subscription_id, usage.price_cents) == (subscription.pk, 0)


def test_the_forced_final_state_is_metered(provider, subscriber):
    target, _subscription, _token = _subscribed(provider, subscriber)
    job = execution_admit(service_version=target.version, owner=subscriber, data=SUM_DATA)
    assert Job.objects.claim(job.pk, worker="w1")
    engine._force_final(job.pk, "w1")
    job.refresh_from_db()
    assert (job.status, job.error_code) == (JobStatus.FAILED, "platform:error")
    assert UsageRecord.objects.get(job=job).price_cents == 0


def test_transitions_out_of_a_final_state_are_refused(provider, subscriber):
    target, _subscription, _token = _subscribed(provider, subscriber)
    job = execution_admit(service_version=target.version, owner=subscriber, data=SUM_DATA)
    assert Job.objects.request_cancel(job.pk) is not None
    assert Job.objects.claim(job.pk, worker="late") is False
    assert (
        Job.objects.finish(job.pk, status=JobStatus.SUCCEEDED, leaving=(JobStatus.PENDING, JobStatus.RUNNING)) is None
    )
    with pytest.raises(IllegalTransition):
        Job.objects.finish(job.pk, status=JobStatus.RUNNING)
    with pytest.raises(IllegalTransition):
        Job.objects.finish(job.pk, status=JobStatus.FAILED, leaving=(JobStatus.CANCELLED,))
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert UsageRecord.objects.filter(job=job).count() == 1


def test_an_idempotency_key_replays_on_the_rest_road(provider, subscriber):
    target, _subscription, _token = _subscribed(provider, subscriber)
    client = api_client_for(subscriber)
    body = {"service_id": str(target.service.pk), "data": SUM_DATA}
    first = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    bad = client.post("/api/v1/jobs/", body, format="json", HTTP_IDEMPOTENCY_KEY="\x00")
    assert (bad.status_code, bad.json()["code"]) == (400, "input:bad-idempotency-key")
    assert Job.objects.count() == 1
