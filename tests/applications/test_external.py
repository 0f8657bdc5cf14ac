"""Services imported from a URL: the gateway forwards every call to a real HTTP service on 127.0.0.1
and records the execution under our own id."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from applications.models import ExternalExecution
from jobs.models import Job, JobStatus
from payments.models import UsageRecord
from tests.applications.conftest import fetch_token, make_app, make_service, subscribe

pytestmark = pytest.mark.django_db


class FakeService(BaseHTTPRequestHandler):
    """The section 3 API of a provider's own service: each status poll moves an execution one step on."""

    executions: dict = {}
    received: list = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = [p for p in self.path.split("/") if p][1:]  # drop the service prefix
        if not parts:
            return self._send(200, {"status": "Service is up and running"})
        execution = self.executions.get(parts[0])
        if execution is None:
            return self._send(404, {"code": "not_found", "detail": "no such execution"})
        if len(parts) == 1:
            order = ["PENDING", "RUNNING", "SUCCEEDED"]
            if execution["status"] in order[:-1]:
                execution["status"] = order[order.index(execution["status"]) + 1]
                if execution["status"] == "RUNNING":
                    execution["startedAt"] = "2026-01-02 03:04:05"
                else:
                    execution["endedAt"] = "2026-01-02 03:04:09"
            return self._send(200, execution)
        if parts[1] == "result":
            if execution["status"] != "SUCCEEDED":
                return self._send(409, {"code": "not-final", "detail": "still running"})
            return self._send(200, {"result": {"sum": 3}, "metadata": {"host": "elsewhere"}})
        if parts[1] == "logs":
            return self._send(200, ["external line 1", "external line 2"])
        if parts[1] == "interim-results":
            return self._send(200, [{"step": 1}])
        return self._send(404, {"code": "not_found", "detail": "unknown"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.received.append(body)
        if body.get("params", {}).get("reject"):
            return self._send(400, {"code": "BAD_INPUT", "detail": "values must be numbers"})
        execution_id = f"ext-{len(self.executions) + 1}"
        self.executions[execution_id] = {
            "id": execution_id,
            "status": "PENDING",
            "createdAt": "2026-01-02 03:04:00",
            "startedAt": None,
            "endedAt": None,
        }
        return self._send(201, self.executions[execution_id])

    def do_PUT(self):
        parts = [p for p in self.path.split("/") if p][1:]
        execution = self.executions.get(parts[0])
        execution["status"] = "CANCELLED"
        execution["endedAt"] = "2026-01-02 03:04:07"
        return self._send(200, execution)


@pytest.fixture(autouse=True)
def _allow_local_services(settings):
    # The provider services of these tests listen on 127.0.0.1, a private address.
    settings.PLANQK_EXTERNAL_ALLOW_PRIVATE = True


@pytest.fixture
def fake_service():
    FakeService.executions = {}
    FakeService.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/svc"
    server.shutdown()
    server.server_close()


@pytest.fixture
def external(fake_service, provider, user, client):
    target = make_service(provider, name="remote", external_url=fake_service)
    app = make_app(user)
    subscription = subscribe(app, target)
    return target, subscription, fetch_token(client, app)


def auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_external_execution_is_forwarded_recorded_and_metered(client, external):
    target, subscription, token = external
    response = client.post(
        target.path,
        json.dumps({"data": {"values": [1, 2]}, "params": {}}),
        content_type="application/json",
        **auth(token),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert FakeService.received == [{"data": {"values": [1, 2]}, "params": {}}]
    # The caller sees our id; the provider's id is only in the mapping.
    mapping = ExternalExecution.objects.get(job_id=body["id"])
    assert mapping.external_id == "ext-1"
    assert body["id"] != "ext-1"
    assert response["Location"].endswith(f"{target.path}{body['id']}")
    job = Job.objects.get(pk=body["id"])
    assert job.runtime == "external"
    assert job.subscription == subscription

    url = f"{target.path}{body['id']}"
    assert client.get(f"{url}/result", **auth(token)).status_code == 409
    assert client.get(url, **auth(token)).json()["status"] == "RUNNING"
    final = client.get(url, **auth(token)).json()
    assert final["status"] == "SUCCEEDED"
    assert final["startedAt"] == "2026-01-02 03:04:05"
    assert final["endedAt"] == "2026-01-02 03:04:09"
    # Final states are recorded once; later polls do not ask the provider again.
    assert client.get(url, **auth(token)).json() == final
    assert UsageRecord.objects.filter(job_id=job.pk, subscription=subscription, status="SUCCEEDED").count() == 1

    result = client.get(f"{url}/result", **auth(token))
    assert result.json() == {"result": {"sum": 3}, "metadata": {"host": "elsewhere"}}
    job.refresh_from_db()
    assert job.result == {"sum": 3}
    FakeService.executions.clear()  # the provider forgot it: our record still answers
    assert client.get(f"{url}/result", **auth(token)).json() == {
        "result": {"sum": 3},
        "metadata": {"host": "elsewhere"},
    }
    FakeService.executions["ext-1"] = final | {"id": "ext-1"}
    assert client.get(f"{url}/logs", **auth(token)).json() == ["external line 1", "external line 2"]
    assert client.get(f"{url}/interim-results", **auth(token)).json() == [{"step": 1}]
    assert client.get(target.path, **auth(token)).json() == {"status": "Service is up and running"}


def test_external_cancel(client, external):
    target, _, token = external
    job_id = client.post(target.path, "{}", content_type="application/json", **auth(token)).json()["id"]
    response = client.put(f"{target.path}{job_id}/cancel", **auth(token))
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert Job.objects.get(pk=job_id).status == JobStatus.CANCELLED


def test_provider_refusing_the_input_passes_its_error_on(client, external):
    target, _, token = external
    response = client.post(
        target.path, json.dumps({"params": {"reject": True}}), content_type="application/json", **auth(token)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_INPUT"
    assert not Job.objects.exists()


def test_data_refs_are_refused_for_external_services(client, external):
    target, _, token = external
    ref = {"dataPoolId": "a", "dataSourceDescriptorId": "b", "fileId": "c"}
    response = client.post(target.path, json.dumps({"dataRef": ref}), content_type="application/json", **auth(token))
    assert response.status_code == 400
    assert response.json()["code"] == "input:ref-not-supported"
    assert FakeService.received == []


def test_unreachable_external_service_is_a_json_502(client, provider, user):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    target = make_service(provider, name="gone", external_url=f"http://127.0.0.1:{port}/svc")
    app = make_app(user)
    subscribe(app, target)
    token = fetch_token(client, app)
    response = client.post(target.path, "{}", content_type="application/json", **auth(token))
    assert response.status_code == 502
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "upstream:unreachable"
    assert not Job.objects.exists()


def test_private_addresses_are_not_forwarded_to_by_default(client, external, fake_service, settings):
    settings.PLANQK_EXTERNAL_ALLOW_PRIVATE = False
    target, _subscription, token = external
    response = client.post(target.path, "{}", content_type="application/json", **auth(token))
    assert response.status_code == 502
    assert response.json()["code"] == "upstream:private-address"
    assert "127.0.0.1" in response.json()["detail"]
    assert FakeService.received == []  # nothing reached the private service
    assert not Job.objects.exists()


def test_reaper_follows_executions_nobody_polls(client, external, fake_service):
    from datetime import timedelta

    from django.utils import timezone

    from applications.gateway.external import external_executions_reap
    from planqk_portal import reaper

    assert "applications.gateway.external.external_executions_reap" in reaper.registered()
    target, _, token = external
    job_id = client.post(target.path, "{}", content_type="application/json", **auth(token)).json()["id"]
    assert external_executions_reap() == {"refreshed": 0, "given_up": 0}  # too young to bother
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(minutes=5))
    assert external_executions_reap()["refreshed"] == 1
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING

    # The provider forgot it and a day has passed: given up as UNKNOWN, and metered.
    FakeService.executions.clear()
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(days=2))
    assert external_executions_reap()["given_up"] == 1
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.UNKNOWN
    assert job.error_code == "upstream:lost"
    assert UsageRecord.objects.filter(job_id=job_id).exists()
