"""planqk_client against a live portal and a real worker."""

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from jobs.models import Job, JobStatus
from planqk_client import (
    AuthenticationError,
    ExecutionNotFinishedError,
    ExecutionTimeoutError,
    PlanqkServiceClient,
    RateLimitError,
    ServiceError,
    _token_endpoint_for,
)
from tests.applications.conftest import make_app, make_service, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(live_server, target, app) -> PlanqkServiceClient:
    return PlanqkServiceClient(f"{live_server.url}{target.path}", app.key, app.secret)


def test_the_token_endpoint_is_derived_from_the_service_endpoint():
    assert _token_endpoint_for("https://h.example/gateway/abc/sum/1.0.0/") == "https://h.example/gateway/token"
    assert _token_endpoint_for("http://h:8000/gw/x/abc/sum/1.0.0") == "http://h:8000/gw/x/token"
    with pytest.raises(ValueError, match="token_endpoint"):
        PlanqkServiceClient("http://h/sum", "k", "s")


def test_sum_execution_result_logs_and_token_refresh(live_server, celery_worker, user, provider):
    target = make_service(provider, name="sum")
    app = make_app(user)
    subscribe(app, target)
    client = client_for(live_server, target, app)
    assert client.health() == {"status": "Service is up and running"}

    execution = client.start_execution(data={"values": [100, 50, 200, 70, 0.69]}, params={"round_off": False})
    assert execution["status"] == "PENDING"
    with pytest.raises(ExecutionNotFinishedError) as early:
        client.get_result(execution["id"])
    assert early.value.status == 409
    final = client.wait_for_final_state(execution["id"], timeout=120)
    assert final["status"] == "SUCCEEDED"
    result = client.get_result(execution["id"])
    assert result["result"] == {"sum": 420.69}
    assert "metadata" in result
    assert isinstance(client.get_logs(execution["id"]), list)
    assert client.get_interim_results(execution["id"]) == []

    # The gateway stops accepting the token (it expired early): the client gets a new one by itself.
    first_token = client.access_token()
    AccessToken.objects.update(expires=timezone.now())
    assert client.get_status(execution["id"])["status"] == "SUCCEEDED"
    assert client.access_token() != first_token

    again = client.start_execution(data={"values": [1]}, idempotency_key="same-order")
    assert client.start_execution(data={"values": [1]}, idempotency_key="same-order")["id"] == again["id"]


def test_cancel_and_timeouts(live_server, celery_worker, user, provider):
    target = make_service(provider, name="slow", sample="slow")
    app = make_app(user)
    subscribe(app, target)
    client = client_for(live_server, target, app)
    execution = client.start_execution(params={"steps": 200, "sleep": 0.5})
    with pytest.raises(ExecutionTimeoutError) as waited:
        client.wait_for_final_state(execution["id"], timeout=1.5, initial_interval=0.2)
    assert waited.value.last_status["status"] in ("PENDING", "RUNNING")
    assert isinstance(waited.value, TimeoutError)
    client.cancel_execution(execution["id"])
    assert client.wait_for_final_state(execution["id"], timeout=60)["status"] == "CANCELLED"


def test_unknown_status_counts_as_final(live_server, user, provider):
    target = make_service(provider, name="sum")
    app = make_app(user)
    subscribe(app, target)
    client = client_for(live_server, target, app)
    execution = client.start_execution(data={"values": [1]})
    Job.objects.filter(pk=execution["id"]).update(status=JobStatus.UNKNOWN, ended_at=timezone.now())
    assert client.wait_for_final_state(execution["id"], timeout=30)["status"] == "UNKNOWN"


def test_clear_exceptions(live_server, user, provider):
    target = make_service(provider, name="sum", sample=None, requests_per_minute=3)
    app = make_app(user)
    wrong = PlanqkServiceClient(f"{live_server.url}{target.path}", app.key, "wrong-secret")
    with pytest.raises(AuthenticationError) as refused:
        wrong.health()
    assert refused.value.status == 401
    assert refused.value.code == "invalid_client"

    client = client_for(live_server, target, app)
    with pytest.raises(ServiceError) as forbidden:
        client.health()
    assert forbidden.value.status == 403
    assert forbidden.value.code == "subscription:required"

    subscribe(app, target)
    with pytest.raises(ServiceError) as too_large:
        client.start_execution(data={"blob": "x" * 1_100_000})
    assert too_large.value.status == 413
    with pytest.raises(ServiceError) as missing:
        client.get_status("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404

    def hammer() -> None:
        for _ in range(10):
            client.health()

    with pytest.raises(RateLimitError) as limited:
        hammer()
    assert limited.value.retry_after >= 1
    with pytest.raises(ValueError, match="not both"):
        client.start_execution(data={}, data_ref={"fileId": "x"})
