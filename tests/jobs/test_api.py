"""The jobs REST API (/api/v1/jobs/) as the CLI uses it, and execution_admit as the gateway calls it."""

from __future__ import annotations

import json

import pytest

from jobs import engine
from jobs.admission import execution_admit
from jobs.models import InterimResult, Job, JobSource, JobStatus
from payments.testing import add_test_card
from planqk_portal.errors import ApplicationError
from tests.conftest import api_client_for, make_user
from tests.jobs.conftest import SUM_DATA, SUM_PARAMS

pytestmark = pytest.mark.django_db


def post_job(client, body, **headers):
    return client.post("/api/v1/jobs/", data=json.dumps(body), content_type="application/json", **headers)


def test_create_run_and_read_a_job_through_the_api(api_client, user, make_version):
    version = make_version(user, "sum")
    created = post_job(api_client, {"service_id": str(version.service_id), "data": SUM_DATA, "params": SUM_PARAMS})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "PENDING"
    assert body["service_name"] == version.service.name
    assert body["version"] == "1.0.0"
    assert body["source"] == "API"
    assert created["Location"].endswith(f"/api/v1/jobs/{body['id']}/")

    engine.execute_job(body["id"])
    job = api_client.get(f"/api/v1/jobs/{body['id']}/").json()
    assert job["status"] == "SUCCEEDED"
    assert job["result"] == {"sum": 420.69}
    assert job["metadata"] is None
    assert job["error"] is None
    assert job["duration_seconds"] >= 0
    assert job["started_at"]
    assert job["ended_at"]

    logs = api_client.get(f"/api/v1/jobs/{body['id']}/logs").json()
    assert logs["final"] is True
    assert "summing 5 values" in "".join(chunk["text"] for chunk in logs["chunks"])
    newer = api_client.get(f"/api/v1/jobs/{body['id']}/logs?after={logs['last']}").json()
    assert newer["chunks"] == []
    assert newer["last"] == logs["last"]


def test_service_by_name_and_version_and_interim_results(api_client, user, make_version):
    version = make_version(user, "slow", name="slowpoke")
    created = post_job(api_client, {"service_name": "slowpoke", "version": "1.0.0", "params": {"steps": 2, "sleep": 0}})
    assert created.status_code == 201, created.content
    engine.execute_job(created.json()["id"])
    interim = api_client.get(f"/api/v1/jobs/{created.json()['id']}/interim-results").json()
    assert [item["payload"]["step"] for item in interim] == [1, 2]
    assert [item["seq"] for item in interim] == [1, 2]

    missing = post_job(api_client, {"service_name": "slowpoke", "version": "9.9.9"})
    assert missing.status_code == 409
    assert missing.json()["code"] == "service:not-callable"
    assert version.service.jobs.count() == 1


def test_failed_job_shows_code_and_detail(api_client, user, make_version):
    version = make_version(user, "failing")
    created = post_job(api_client, {"service_id": str(version.service_id)})
    engine.execute_job(created.json()["id"])
    job = api_client.get(f"/api/v1/jobs/{created.json()['id']}/").json()
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "SAMPLE_FAILURE"
    assert "always fails" in job["error"]["detail"]
    assert job["result"] is None


def test_list_is_newest_first_filtered_and_paginated(api_client, user, make_version, settings):
    settings.PLANQK_OWNER_MAX_CONCURRENT = 0  # 29 jobs waiting at once, none of them run
    settings.PLANQK_OWNER_REQUESTS_PER_MINUTE = 0
    sums = make_version(user, "sum")
    fails = make_version(user, "failing")
    for _ in range(27):
        execution_admit(service_version=sums, owner=user, data=SUM_DATA)
    failed = execution_admit(service_version=fails, owner=user)
    Job.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED)
    stranger = make_user()
    execution_admit(service_version=make_version(stranger, "sum"), owner=stranger)  # not ours

    first = api_client.get("/api/v1/jobs/").json()
    assert first["count"] == 28
    assert len(first["results"]) == 25
    assert first["results"][0]["id"] == str(failed.id)
    assert first["next"]
    second = api_client.get("/api/v1/jobs/?page=2").json()
    assert len(second["results"]) == 3

    by_service = api_client.get(f"/api/v1/jobs/?service={fails.service_id}").json()
    assert [j["id"] for j in by_service["results"]] == [str(failed.id)]
    by_status = api_client.get("/api/v1/jobs/?status=FAILED").json()
    assert [j["id"] for j in by_status["results"]] == [str(failed.id)]
    assert api_client.get("/api/v1/jobs/?status=DONE").status_code == 400
    assert api_client.get("/api/v1/jobs/?service=nope").status_code == 400


def test_another_users_job_is_404_everywhere(api_client, user, make_version):
    other = make_user()
    theirs = execution_admit(service_version=make_version(other, "sum"), owner=other, data=SUM_DATA)
    for path in ("/", "/logs", "/interim-results"):
        response = api_client.get(f"/api/v1/jobs/{theirs.id}{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "job:not-found"
    assert api_client.post(f"/api/v1/jobs/{theirs.id}/cancel").status_code == 404
    assert Job.objects.get(pk=theirs.pk).status == JobStatus.PENDING
    # Their service is not usable for this user either.
    denied = post_job(api_client, {"service_id": str(theirs.service_id)})
    assert denied.status_code == 404
    assert denied.json()["code"] == "service:not-found"


def test_a_subscribed_service_of_another_provider_is_usable_and_metered(api_client, user, make_version):
    from applications.models import Subscription
    from applications.services import application_create
    from payments.models import UsageRecord
    from services.models import PricingPlan

    provider = make_user()
    version = make_version(provider, "sum", lifecycle="PUBLISHED")
    plan = PricingPlan.objects.create(service=version.service, name="Per run", kind="PER_EXECUTION", price_cents=25)
    application = application_create(owner=user, name="my app").application
    Subscription.objects.create(
        application=application, service=version.service, plan=plan, plan_kind="PER_EXECUTION", price_cents=25
    )
    add_test_card(user)  # a paid plan is served only while the subscriber can pay
    created = post_job(api_client, {"service_id": str(version.service_id), "data": SUM_DATA})
    assert created.status_code == 201, created.content
    engine.execute_job(created.json()["id"])
    usage = UsageRecord.objects.get(job_id=created.json()["id"])
    assert usage.price_cents == 25
    assert usage.status == "SUCCEEDED"


def test_input_larger_than_one_megabyte_is_413(api_client, user, make_version, settings):
    version = make_version(user, "sum")
    big = {"values": [1] * 600_000}  # 1.2 MB as JSON
    response = post_job(api_client, {"service_id": str(version.service_id), "data": big})
    assert response.status_code == 413
    assert response.json()["code"] == "input:too-large"
    # The whole body is refused before parsing when it could not hold two valid inputs.
    huge = post_job(api_client, {"service_id": str(version.service_id), "data": {"x": "y" * 3_000_000}})
    assert huge.status_code == 413
    assert huge.json()["code"] == "input:too-large"
    assert not Job.objects.exists()


def test_very_deep_nesting_is_400_not_a_server_error(api_client, user, make_version):
    version = make_version(user, "sum")
    service = str(version.service_id)
    # Deeper than the JSON parser's recursion can follow.
    body = '{"service_id": "' + service + '", "data": {"x": ' + "[" * 200_000 + "]" * 200_000 + "}}"
    response = api_client.post("/api/v1/jobs/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "input:too-deep"
    # Parseable, but deeper than a job input may be.
    deep: dict = {}
    node = deep
    for _ in range(150):
        node["x"] = {}
        node = node["x"]
    response = post_job(api_client, {"service_id": service, "data": deep})
    assert response.status_code == 400
    assert response.json()["code"] == "input:too-deep"
    assert not Job.objects.exists()


def test_bad_input_gets_clear_errors(api_client, user, make_version):
    service = str(make_version(user, "sum").service_id)
    cases = [
        ({"service_id": service, "data": [1, 2]}, "input:not-an-object"),
        ({"service_id": service, "data": {}, "dataRef": None, "params": "x"}, "input:not-an-object"),
        ({"data": {}}, "invalid"),
        ({"service_id": service, "dataRef": {"dataPoolId": "nope"}}, "invalid"),
        ({"service_id": service, "data": {"text": "NUL \u0000"}}, "input:invalid-characters"),
        ({"service_id": service, "params": {"\ud800": 1}}, "input:invalid-characters"),
    ]
    for body, code in cases:
        response = post_job(api_client, body)
        assert response.status_code == 400, body
        assert response.json()["code"] == code, body
    broken = api_client.post("/api/v1/jobs/", data='{"service_id": ', content_type="application/json")
    assert broken.status_code == 400
    nan_body = '{"service_id": "' + service + '", "data": {"x": NaN}}'
    nan = api_client.post("/api/v1/jobs/", data=nan_body, content_type="application/json")
    assert nan.status_code == 400
    assert not Job.objects.exists()


def test_idempotency_key_returns_the_first_job(api_client, user, make_version):
    version = make_version(user, "sum")
    body = {"service_id": str(version.service_id), "data": SUM_DATA}
    first = post_job(api_client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    again = post_job(api_client, body, HTTP_IDEMPOTENCY_KEY="order-42")
    other = post_job(api_client, body, HTTP_IDEMPOTENCY_KEY="order-43")
    assert first.json()["id"] == again.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    assert Job.objects.count() == 2


def test_gateway_idempotency_key_is_per_application(user, make_version):
    from applications.models import Subscription
    from applications.services import application_create
    from services.models import PricingPlan

    version = make_version(user, "sum", lifecycle="ACCESSIBLE")
    plan = PricingPlan.objects.create(service=version.service, name="Free", kind="FREE")
    subscriptions = [
        Subscription.objects.create(
            application=application_create(owner=user, name=name).application,
            service=version.service,
            plan=plan,
            plan_kind="FREE",
        )
        for name in ("a", "b")
    ]
    kwargs = {"service_version": version, "owner": user, "data": SUM_DATA, "source": JobSource.GATEWAY}
    first = execution_admit(**kwargs, subscription=subscriptions[0], idempotency_key="k1")
    assert execution_admit(**kwargs, subscription=subscriptions[0], idempotency_key="k1").pk == first.pk
    assert execution_admit(**kwargs, subscription=subscriptions[1], idempotency_key="k1").pk != first.pk


def test_cancel_a_pending_job_through_the_api(api_client, user, make_version):
    created = post_job(api_client, {"service_id": str(make_version(user, "sum").service_id), "data": SUM_DATA})
    cancelled = api_client.post(f"/api/v1/jobs/{created.json()['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["error"]["code"] == "job:cancelled"
    assert engine.execute_job(created.json()["id"]) == "not claimed"
    assert Job.objects.get(pk=created.json()["id"]).runtime_starts == 0


def test_a_version_that_is_not_built_cannot_run(user, make_version):
    from services.models import BuildStatus

    version = make_version(user, "sum")
    version.status = BuildStatus.FAILED
    version.save()
    with pytest.raises(ApplicationError) as raised:
        execution_admit(service_version=version, owner=user)
    assert raised.value.status == 409
    assert raised.value.code == "service:not-callable"


def test_unauthenticated_api_calls_are_refused(client):
    assert client.get("/api/v1/jobs/").status_code in (401, 403)


# --- data pools -----------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def test_input_from_a_data_pool_reference(api_client, user, make_version, media):
    from datapools.services import datafile_create_from_json, datapool_create

    pool = datapool_create(user=user, name="inputs")
    datafile = datafile_create_from_json(user=user, pool=pool, name="numbers", payload=SUM_DATA)
    version = make_version(user, "sum")
    created = post_job(api_client, {"service_id": str(version.service_id), "dataRef": datafile.reference})
    assert created.status_code == 201, created.content
    engine.execute_job(created.json()["id"])
    job = Job.objects.get(pk=created.json()["id"])
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"sum": 420.69}


def test_data_pool_input_may_be_larger_than_the_by_value_limit(api_client, user, make_version, media, settings):
    # The documented way to pass more than 1 MB: by value is refused, a data pool file works.
    from datapools.services import datafile_create_from_json, datapool_create

    settings.PLANQK_INPUT_MAX_BYTES = 4096
    big = {"values": [1] * 5000}  # about 10 kB of JSON
    version = make_version(user, "sum")
    by_value = post_job(api_client, {"service_id": str(version.service_id), "data": big})
    assert by_value.status_code == 413
    pool = datapool_create(user=user, name="big inputs")
    datafile = datafile_create_from_json(user=user, pool=pool, name="big", payload=big)
    created = post_job(api_client, {"service_id": str(version.service_id), "dataRef": datafile.reference})
    assert created.status_code == 201, created.content
    engine.execute_job(created.json()["id"])
    job = Job.objects.get(pk=created.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail)
    assert job.result == {"sum": 5000}

    settings.PLANQK_DATAREF_MAX_BYTES = 4096
    refused = post_job(api_client, {"service_id": str(version.service_id), "dataRef": datafile.reference})
    engine.execute_job(refused.json()["id"])
    job = Job.objects.get(pk=refused.json()["id"])
    assert job.status == JobStatus.FAILED
    assert job.error_code == "datapool:too-large"


def test_a_data_file_deleted_before_the_start_fails_the_job_clearly(api_client, user, make_version, media):
    from datapools.services import datafile_create_from_json, datafile_delete, datapool_create

    pool = datapool_create(user=user, name="inputs")
    datafile = datafile_create_from_json(user=user, pool=pool, name="numbers", payload=SUM_DATA)
    version = make_version(user, "sum")
    created = post_job(api_client, {"service_id": str(version.service_id), "dataRef": datafile.reference})
    datafile_delete(user=user, datafile=datafile)
    engine.execute_job(created.json()["id"])
    job = api_client.get(f"/api/v1/jobs/{created.json()['id']}/").json()
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "datapool:not-found"
    assert "deleted" in job["error"]["detail"]


def test_another_users_private_file_is_refused_at_submit(api_client, user, make_version, media):
    from datapools.services import datafile_create_from_json, datapool_create

    other = make_user()
    secret = datafile_create_from_json(
        user=other, pool=datapool_create(user=other, name="private"), name="s", payload={"a": 1}
    )
    version = make_version(user, "sum")
    response = post_job(api_client, {"service_id": str(version.service_id), "dataRef": secret.reference})
    assert response.status_code in (403, 404)
    assert response.json()["code"].startswith("datapool:")
    assert not Job.objects.exists()


def test_result_saved_to_a_new_data_pool(api_client, user, make_version, media):
    from datapools.selectors import datafile_read_json

    version = make_version(user, "sum")
    created = post_job(
        api_client, {"service_id": str(version.service_id), "data": SUM_DATA, "save_result_to_pool": True}
    )
    engine.execute_job(created.json()["id"])
    job = api_client.get(f"/api/v1/jobs/{created.json()['id']}/").json()
    assert job["status"] == "SUCCEEDED"
    assert job["result_file"] is not None
    saved = datafile_read_json(user=user, ref=job["result_file"], max_bytes=10_000)
    assert saved == {"result": {"sum": 420.69}, "metadata": None}


def test_result_saved_into_a_chosen_pool_and_unwritable_pool_refused(api_client, user, make_version, media):
    from datapools.models import DataFile
    from datapools.services import datapool_create

    version = make_version(user, "sum")
    pool = datapool_create(user=user, name="results")
    created = post_job(
        api_client, {"service_id": str(version.service_id), "data": SUM_DATA, "result_pool_id": str(pool.id)}
    )
    engine.execute_job(created.json()["id"])
    assert DataFile.objects.filter(pool=pool).count() == 1

    foreign = datapool_create(user=make_user(), name="not yours")
    refused = post_job(api_client, {"service_id": str(version.service_id), "result_pool_id": str(foreign.id)})
    assert refused.status_code == 404
    assert InterimResult.objects.count() == 0


def test_other_user_client_sees_only_their_own_jobs(user, make_version):
    other = make_user()
    execution_admit(service_version=make_version(user, "sum"), owner=user)
    assert api_client_for(other).get("/api/v1/jobs/").json()["count"] == 0


def test_only_executions_that_ran_are_charged(api_client, user, make_version, media):
    from applications.models import Subscription
    from applications.services import application_create
    from datapools.services import datafile_create_from_json, datafile_delete, datapool_create
    from payments.models import UsageRecord
    from services.models import PricingPlan

    provider = make_user()
    version = make_version(provider, "failing", lifecycle="PUBLISHED")
    plan = PricingPlan.objects.create(service=version.service, name="Per run", kind="PER_EXECUTION", price_cents=25)
    application = application_create(owner=user, name="my app").application
    Subscription.objects.create(
        application=application, service=version.service, plan=plan, plan_kind="PER_EXECUTION", price_cents=25
    )
    add_test_card(user)  # a paid plan is served only while the subscriber can pay
    body = {"service_id": str(version.service_id)}
    ran = post_job(api_client, body).json()["id"]
    engine.execute_job(ran)
    datafile = datafile_create_from_json(user=user, pool=datapool_create(user=user, name="in"), name="x", payload={})
    never = post_job(api_client, {**body, "dataRef": datafile.reference}).json()["id"]
    datafile_delete(user=user, datafile=datafile)
    engine.execute_job(never)
    cancelled = post_job(api_client, body).json()["id"]
    api_client.post(f"/api/v1/jobs/{cancelled}/cancel")

    prices = {str(u.job_id): (u.status, u.price_cents) for u in UsageRecord.objects.all()}
    assert prices == {ran: ("FAILED", 25), never: ("FAILED", 0), cancelled: ("CANCELLED", 0)}
