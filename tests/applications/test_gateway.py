"""The service API (ARCHITECTURE section 3) through Django's test client: every error path, the job
object, limits, idempotency and the query budget of status polling. End-to-end runs with a real
worker live in test_flow.py."""

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from applications.services import application_delete, subscription_end
from jobs.models import InterimResult, Job, JobLogChunk, JobStatus
from tests.applications.conftest import fetch_token, make_app, make_service, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

SUM_INPUT = {"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(client, path: str, token: str, body, **headers):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, raw, content_type="application/json", **bearer(token), **headers)


def test_service_root_says_it_is_up(client, subscribed):
    _, service, token = subscribed
    response = client.get(service.path, **bearer(token))
    assert response.status_code == 200
    assert response.json() == {"status": "Service is up and running"}


def test_post_creates_a_pending_execution_with_location(client, subscribed, user):
    app, service, token = subscribed
    response = post(client, service.path, token, SUM_INPUT)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "status", "createdAt", "startedAt", "endedAt"}
    assert body["status"] == "PENDING"
    assert body["startedAt"] is None
    assert body["endedAt"] is None
    # "YYYY-MM-DD HH:MM:SS" in UTC
    assert len(body["createdAt"]) == 19
    assert body["createdAt"][10] == " "
    assert response["Location"] == f"http://testserver{service.path}{body['id']}"
    job = Job.objects.get(pk=body["id"])
    assert job.owner == user
    assert job.application == app.application
    assert job.subscription.service == service.service
    assert job.source == "GATEWAY"
    assert job.data == SUM_INPUT["data"]
    assert job.params == SUM_INPUT["params"]


def test_trailing_slash_is_optional(client, subscribed):
    _, service, token = subscribed
    assert post(client, service.path.rstrip("/"), token, {}).status_code == 201
    job_id = post(client, service.path, token, {}).json()["id"]
    assert client.get(f"{service.path}{job_id}/", **bearer(token)).status_code == 200


def test_status_timestamps_are_utc_in_the_contract_format(client, subscribed):
    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    started = timezone.now().replace(microsecond=0) - timedelta(seconds=5)
    Job.objects.filter(pk=job_id).update(status=JobStatus.RUNNING, started_at=started)
    body = client.get(f"{service.path}{job_id}", **bearer(token)).json()
    assert body["status"] == "RUNNING"
    assert body["startedAt"] == started.strftime("%Y-%m-%d %H:%M:%S")
    assert body["endedAt"] is None


def test_status_polling_costs_one_query(client, subscribed, django_assert_max_num_queries):
    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    with django_assert_max_num_queries(1):
        response = client.get(f"{service.path}{job_id}", **bearer(token))
    assert response.status_code == 200


def test_no_token_is_401_with_www_authenticate(client, sum_service):
    response = client.get(sum_service.path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "unauthorized"


def test_unknown_and_malformed_tokens_are_401(client, sum_service):
    for header in ("Bearer not-a-token", "Bearer ", "Basic abc", "Bearer a b"):
        response = client.get(sum_service.path, HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert "WWW-Authenticate" in response


def test_expired_token_is_401_invalid_token(client, subscribed):
    _, service, token = subscribed
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = client.get(service.path, **bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.json()["code"] == "invalid_token"


def test_unsubscribed_application_gets_403(client, user, sum_service):
    app = make_app(user, "not subscribed")
    token = fetch_token(client, app)
    response = post(client, sum_service.path, token, SUM_INPUT)
    assert response.status_code == 403
    assert response.json()["code"] == "subscription:required"
    assert not Job.objects.exists()


def test_ended_subscription_gets_403(client, subscribed):
    app, service, token = subscribed
    subscription_end(subscription=app.application.subscriptions.get())
    assert client.get(service.path, **bearer(token)).status_code == 403


def test_deleted_application_token_stops_working(client, subscribed):
    app, service, token = subscribed
    application_delete(application=app.application)
    assert client.get(service.path, **bearer(token)).status_code == 401


def test_unknown_service_is_answered_as_not_subscribed_and_unknown_version_is_a_json_404(client, subscribed, provider):
    _, _service, token = subscribed
    for path in (
        f"/gateway/{provider.uuid}/no-such-service/1.0.0/",
        f"/gateway/{uuid.uuid4()}/sum/1.0.0/",
        "/gateway/not-a-uuid/sum/1.0.0/",
    ):
        # No subscription to that address: the same answer whether a service is there or not
        # (tests/applications/test_gateway_enumeration.py).
        response = client.get(path, **bearer(token))
        assert (response.status_code, response.json()["code"]) == (403, "subscription:required"), path
        assert response["Content-Type"] == "application/json"
    response = client.get(f"/gateway/{provider.uuid}/sum/9.9.9/", **bearer(token))
    assert response.status_code == 404
    assert response.json()["code"] == "service:version-not-found"


def test_another_applications_execution_is_404(client, subscribed, sum_service):
    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    stranger = make_app(make_user("mallory@example.com"), "other")
    subscribe(stranger, sum_service)
    other_token = fetch_token(client, stranger)
    for suffix in ("", "/result", "/logs", "/interim-results"):
        response = client.get(f"{service.path}{job_id}{suffix}", **bearer(other_token))
        assert response.status_code == 404, suffix
        assert response.json()["code"] == "execution:not-found"
    response = client.put(f"{service.path}{job_id}/cancel", **bearer(other_token))
    assert response.status_code == 404
    assert Job.objects.get(pk=job_id).status == JobStatus.PENDING


def test_unknown_gateway_paths_and_methods_answer_json(client, subscribed):
    _, service, token = subscribed
    response = client.get("/gateway/", **bearer(token))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = client.get(f"{service.path}x/y/z/w", **bearer(token))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    response = client.delete(service.path, **bearer(token))
    assert response.status_code == 405
    assert response.json()["code"] == "method-not-allowed"
    assert response["Allow"] == "GET, POST"
    job_id = post(client, service.path, token, {}).json()["id"]
    assert client.get(f"{service.path}{job_id}/cancel", **bearer(token)).status_code == 405
    assert client.get(f"{service.path}not-a-uuid", **bearer(token)).status_code == 404


def test_body_over_one_megabyte_is_413(client, subscribed):
    _, service, token = subscribed
    big = {"data": {"blob": "x" * 1_500_000}}
    response = post(client, service.path, token, big)
    assert response.status_code == 413
    assert response.json()["code"] == "input:too-large"
    huge = {"data": {"blob": "x" * 3_000_000}}
    assert post(client, service.path, token, huge).status_code == 413
    assert not Job.objects.exists()


def test_data_and_params_of_almost_a_megabyte_each_are_accepted(client, subscribed):
    _, service, token = subscribed
    body = {"data": {"blob": "x" * 1_000_000}, "params": {"blob": "y" * 1_000_000}}
    assert post(client, service.path, token, body).status_code == 201


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"data": {"values": [1, 2}', "input:malformed-json"),
        ("[1, 2, 3]", "input:not-an-object"),
        ('{"data": [1, 2]}', "input:not-an-object"),
        ('{"data": {"x": NaN}}', "input:malformed-json"),
        ('{"data": {"x": "\\u0000"}}', "input:invalid-characters"),
        ('{"data": {"x": "\\ud800"}}', "input:invalid-characters"),
        (b'{"data": {"x": "\xff"}}', "input:malformed-json"),
        ('{"data": {}, "dataRef": {"dataPoolId": "a", "dataSourceDescriptorId": "b", "fileId": "c"}}', None),
        ('{"dataRef": "file"}', "datapool:bad-reference"),
    ],
)
def test_bad_bodies_are_400_with_a_code(client, subscribed, raw, code):
    _, service, token = subscribed
    response = post(client, service.path, token, raw)
    assert response.status_code == 400, response.content
    if code:
        assert response.json()["code"] == code
    assert not Job.objects.exists()


def test_very_deep_nesting_is_400_not_500(client, subscribed):
    _, service, token = subscribed
    for depth in (150, 5000, 100_000):
        raw = '{"data": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        response = post(client, service.path, token, raw)
        assert response.status_code == 400, depth
        assert response.json()["code"] == "input:too-deep"
    deep_list = '{"data": {"a": ' + "[" * 3000 + "]" * 3000 + "}}"
    assert post(client, service.path, token, deep_list).status_code == 400


def test_result_is_409_until_final_then_result_or_error(client, subscribed):
    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    response = client.get(f"{service.path}{job_id}/result", **bearer(token))
    assert response.status_code == 409
    assert response.json()["status"] == "PENDING"

    now = timezone.now()
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.SUCCEEDED, started_at=now, ended_at=now, result={"sum": 420.69}, result_metadata=None
    )
    assert client.get(f"{service.path}{job_id}/result", **bearer(token)).json() == {
        "result": {"sum": 420.69},
        "metadata": None,
    }
    Job.objects.filter(pk=job_id).update(status=JobStatus.FAILED, error_code="SAMPLE_FAILURE", error_detail="boom")
    assert client.get(f"{service.path}{job_id}/result", **bearer(token)).json() == {
        "code": "SAMPLE_FAILURE",
        "detail": "boom",
    }


def test_logs_are_a_list_of_lines_and_interim_results_a_list(client, subscribed):
    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    assert client.get(f"{service.path}{job_id}/logs", **bearer(token)).json() == []
    JobLogChunk.objects.create(job_id=job_id, seq=1, text="starting\nhalf ")
    JobLogChunk.objects.create(job_id=job_id, seq=2, text="way\ndone\n")
    assert client.get(f"{service.path}{job_id}/logs", **bearer(token)).json() == ["starting", "half way", "done"]
    InterimResult.objects.create(job_id=job_id, seq=2, payload={"step": 2})
    InterimResult.objects.create(job_id=job_id, seq=1, payload={"step": 1})
    assert client.get(f"{service.path}{job_id}/interim-results", **bearer(token)).json() == [{"step": 1}, {"step": 2}]


def test_cancel_a_pending_execution(client, subscribed):
    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    response = client.put(f"{service.path}{job_id}/cancel", **bearer(token))
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["endedAt"] is not None
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELLED


def test_idempotency_key_returns_the_same_execution(client, subscribed):
    _, service, token = subscribed
    first = post(client, service.path, token, SUM_INPUT, HTTP_IDEMPOTENCY_KEY="order-42")
    again = post(client, service.path, token, SUM_INPUT, HTTP_IDEMPOTENCY_KEY="order-42")
    other = post(client, service.path, token, SUM_INPUT, HTTP_IDEMPOTENCY_KEY="order-43")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again["Location"] == first["Location"]
    assert other.json()["id"] != first.json()["id"]
    assert Job.objects.count() == 2


def test_bad_idempotency_key_is_400(client, subscribed):
    _, service, token = subscribed
    response = post(client, service.path, token, SUM_INPUT, HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 400
    assert response.json()["code"] == "input:bad-idempotency-key"


def away_from_a_minute_boundary() -> None:
    """The counter's window is the clock minute: start a short burst well inside one."""
    import time

    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


def test_requests_per_minute_limit_is_429_with_retry_after(client, user, provider):
    target = make_service(provider, name="limited", requests_per_minute=3)
    app = make_app(user, "limited app")
    subscribe(app, target)
    token = fetch_token(client, app)
    away_from_a_minute_boundary()
    codes = [client.get(target.path, **bearer(token)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    response = client.get(target.path, **bearer(token))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response.json()["code"] == "rate-limit:requests-per-minute"


def test_rate_limits_are_per_subscription(client, user, provider):
    target = make_service(provider, name="limited", requests_per_minute=2)
    first, second = make_app(user, "first"), make_app(user, "second")
    subscribe(first, target)
    subscribe(second, target)
    one, two = fetch_token(client, first), fetch_token(client, second)
    away_from_a_minute_boundary()
    assert [client.get(target.path, **bearer(one)).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(target.path, **bearer(two)).status_code == 200


def test_concurrent_execution_limit_is_429(client, user, provider):
    target = make_service(provider, name="narrow", max_concurrent=2)
    app = make_app(user, "busy app")
    subscribe(app, target)
    token = fetch_token(client, app)
    codes = [post(client, target.path, token, SUM_INPUT).status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    # A finished execution frees its slot.
    Job.objects.filter(pk=Job.objects.order_by("created_at").first().pk).update(status=JobStatus.SUCCEEDED)
    response = post(client, target.path, token, SUM_INPUT)
    assert response.status_code == 201
    blocked = post(client, target.path, token, SUM_INPUT)
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate-limit:concurrent-executions"
    assert int(blocked["Retry-After"]) > 0


def test_accessible_service_is_only_for_its_owners_applications(client, provider, user):
    own = make_service(provider, name="internal", lifecycle="ACCESSIBLE")
    mine = make_app(provider, "provider app")
    subscribe(mine, own)
    token = fetch_token(client, mine)
    assert client.get(own.path, **bearer(token)).status_code == 200
    # Later unpublished: subscribers are refused.
    own.service.lifecycle = "CREATED"
    own.service.save()
    response = client.get(own.path, **bearer(token))
    assert response.status_code == 403
    assert response.json()["code"] == "service:not-published"


def test_gateway_needs_no_csrf_token(subscribed):
    _, service, token = subscribed
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, service.path, token, SUM_INPUT).status_code == 201


def _ref(datafile) -> dict:
    return {
        "dataPoolId": str(datafile.pool_id),
        "dataSourceDescriptorId": str(datafile.descriptor_id),
        "fileId": str(datafile.id),
    }


def test_data_ref_is_resolved_with_the_application_owners_rights(client, subscribed, user):
    from datapools.services import datafile_create_from_json, datapool_share

    _, service, token = subscribed
    stranger = make_user("carol@example.com")
    private = datafile_create_from_json(user=stranger, pool=None, name="secret input", payload={"values": [1]})
    response = post(client, service.path, token, {"dataRef": _ref(private)})
    assert response.status_code in (403, 404)
    assert response.json()["code"] in ("datapool:forbidden", "datapool:not-found")
    assert not Job.objects.exists()

    missing = {**_ref(private), "fileId": str(uuid.uuid4())}
    datapool_share(user=stranger, pool=private.pool, email=user.email)
    response = post(client, service.path, token, {"dataRef": missing})
    assert response.status_code == 404
    assert response.json()["code"] == "datapool:not-found"

    # Shared with the application's owner: now it is readable through the application.
    response = post(client, service.path, token, {"dataRef": _ref(private), "paramsRef": None})
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.data_ref == _ref(private)
    assert job.data is None


def test_malformed_data_ref_is_400(client, subscribed):
    _, service, token = subscribed
    response = post(
        client, service.path, token, {"dataRef": {"dataPoolId": "x", "dataSourceDescriptorId": "y", "fileId": "z"}}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "datapool:bad-reference"


def test_execution_is_only_found_under_its_own_version(client, subscribed):
    from services.models import ServiceVersion

    _, service, token = subscribed
    job_id = post(client, service.path, token, SUM_INPUT).json()["id"]
    ServiceVersion.objects.create(service=service.service, version="2.0.0", status="READY")
    other = service.path.replace("/1.0.0/", "/2.0.0/")
    assert client.get(f"{other}{job_id}", **bearer(token)).status_code == 404
    assert client.get(f"{service.path}{job_id}", **bearer(token)).status_code == 200


def test_idempotency_key_of_another_service_is_409(client, subscribed, user, provider):
    app, service, token = subscribed
    other = make_service(provider, name="other-sum", sample=None)
    subscribe(app, other)
    assert post(client, service.path, token, SUM_INPUT, HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    response = post(client, other.path, token, SUM_INPUT, HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 409
    assert response.json()["code"] == "input:idempotency-key-reused"
