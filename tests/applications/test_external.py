"""Services imported from a URL: an execution runs through admission and the engine like any other,
on the external runtime, against a real HTTP service on 127.0.0.1; callers only ever see our id."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs import engine
from jobs.models import Job
from payments.models import UsageRecord
from payments.testing import add_test_card
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
        if (body.get("params") or {}).get("reject"):
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
    # The provider services of these tests listen on 127.0.0.1, a private address; the engine
    # keeps one runtime per process, so it is made again from the settings of each test.
    settings.PLANQK_EXTERNAL_ALLOW_PRIVATE = True
    engine._runtimes.clear()
    yield
    engine._runtimes.clear()


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
    add_test_card(user)
    target = make_service(provider, name="remote", external_url=fake_service, plan_kind="PER_EXECUTION", price_cents=30)
    app = make_app(user)
    subscription = subscribe(app, target)
    return target, subscription, fetch_token(client, app)


def auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def start(client, target, token, body) -> str:
    response = client.post(target.path, json.dumps(body), content_type="application/json", **auth(token))
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "PENDING"
    return response.json()["id"]


def test_external_execution_runs_through_the_engine_and_is_metered(client, external):
    target, subscription, token = external
    job_id = start(client, target, token, {"data": {"values": [1, 2]}, "params": {}})
    assert FakeService.received == []  # admission made the job; the worker starts it
    assert client.get(f"{target.path}{job_id}/result", **auth(token)).status_code == 409
    assert engine.execute_job(job_id) == "SUCCEEDED", Job.objects.values("error_code", "error_detail").get(pk=job_id)
    assert FakeService.received == [{"data": {"values": [1, 2]}, "params": {}}]

    job = Job.objects.get(pk=job_id)
    assert (job.runtime, job.subscription_id, job.runtime_starts) == ("external", subscription.pk, 1)
    assert job.runtime_handle["external_id"] == "ext-1"
    url = f"{target.path}{job_id}"
    status = client.get(url, **auth(token)).json()
    assert status["id"] == job_id != "ext-1"
    assert status["status"] == "SUCCEEDED"
    assert client.get(f"{url}/result", **auth(token)).json() == {
        "result": {"sum": 3},
        "metadata": {"host": "elsewhere"},
    }
    FakeService.executions.clear()  # the provider forgot it: our record still answers everything
    assert client.get(f"{url}/result", **auth(token)).json()["result"] == {"sum": 3}
    logs = client.get(f"{url}/logs", **auth(token)).json()
    assert "external line 1" in logs
    assert "external line 2" in logs
    assert client.get(f"{url}/interim-results", **auth(token)).json() == [{"step": 1}]
    usage = UsageRecord.objects.get(job_id=job_id)
    assert (usage.subscription_id, usage.status, usage.price_cents) == (subscription.pk, "SUCCEEDED", 30)


def test_a_pending_external_execution_cancelled_never_reaches_the_provider(client, external):
    target, _, token = external
    job_id = start(client, target, token, {})
    response = client.put(f"{target.path}{job_id}/cancel", **auth(token))
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert engine.execute_job(job_id) == "not claimed"
    assert FakeService.received == []
    assert UsageRecord.objects.get(job_id=job_id).price_cents == 0


def test_provider_refusing_the_input_fails_the_job_with_its_error(client, external):
    target, _, token = external
    job_id = start(client, target, token, {"params": {"reject": True}})
    assert engine.execute_job(job_id) == "FAILED"
    result = client.get(f"{target.path}{job_id}/result", **auth(token)).json()
    assert result == {"code": "BAD_INPUT", "detail": "values must be numbers"}


def test_data_pool_references_reach_external_services_by_value(client, external, user, settings, tmp_path):
    from datapools.services import datafile_create_from_json, datapool_create

    settings.MEDIA_ROOT = str(tmp_path / "media")
    target, _, token = external
    pool = datapool_create(user=user, name="inputs")
    datafile = datafile_create_from_json(user=user, pool=pool, name="values.json", payload={"values": [5, 6]})
    job_id = start(client, target, token, {"dataRef": datafile.reference})
    assert engine.execute_job(job_id) == "SUCCEEDED", Job.objects.values("error_code", "error_detail").get(pk=job_id)
    assert FakeService.received == [{"data": {"values": [5, 6]}, "params": None}]


def test_unreachable_external_service_fails_the_job_and_costs_nothing(client, provider, user):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    target = make_service(provider, name="gone", external_url=f"http://127.0.0.1:{port}/svc")
    app = make_app(user)
    subscribe(app, target)
    token = fetch_token(client, app)
    job_id = start(client, target, token, {})
    assert engine.execute_job(job_id) == "FAILED"
    job = Job.objects.get(pk=job_id)
    assert job.error_code == "upstream:unreachable"
    assert UsageRecord.objects.get(job_id=job_id).price_cents == 0


def test_private_addresses_are_not_forwarded_to_by_default(client, external, fake_service, settings):
    settings.PLANQK_EXTERNAL_ALLOW_PRIVATE = False
    engine._runtimes.clear()
    target, _subscription, token = external
    job_id = start(client, target, token, {"data": {"secret": "for the provider only"}})
    assert engine.execute_job(job_id) == "FAILED"
    result = client.get(f"{target.path}{job_id}/result", **auth(token)).json()
    assert result["code"] == "upstream:private-address"
    assert FakeService.received == []  # nothing reached the private service
    assert UsageRecord.objects.get(job_id=job_id).price_cents == 0


def test_one_reaper_for_every_runtime(client, external):
    from planqk_portal import reaper

    assert not [name for name in reaper.registered() if "external" in name]
    target, _, token = external
    job_id = start(client, target, token, {})
    # The worker died right after starting it at the provider: the engine's reaper hands it over.
    from datetime import timedelta

    from django.utils import timezone

    assert Job.objects.claim(job_id, worker="dead")
    job = Job.objects.select_related("service", "service_version", "owner", "result_pool").get(pk=job_id)
    execution = engine.Execution(job, "dead")
    execution.handle = execution._start()
    assert FakeService.received == [{"data": None, "params": None}]
    Job.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert engine.job_reap()["handed_over"] == 1
    assert engine.execute_job(job_id) == "SUCCEEDED", Job.objects.values("error_code", "error_detail").get(pk=job_id)
    assert len(FakeService.received) == 1  # not started a second time
