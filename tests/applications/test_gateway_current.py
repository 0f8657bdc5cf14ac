"""The current service API (Kipu Quantum Hub's) on the gateway, for a version of the current
generation, through Django's test client: the shapes the SDKs parse, who sees what, and the
additions to the documented API (``/log``, result files) that change nothing else of it.

Jobs are made final here by hand (as in test_gateway.py); real runs with the real SDKs are in
tests/contract/test_sdks.py.
"""

import json
import uuid

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from jobs.models import Job, JobLogChunk, JobResultFile, JobStatus
from services.models import Generation
from tests.applications.conftest import fetch_token, make_app, make_service, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

EXECUTION_KEYS = {
    "id",
    "status",
    "createdAt",
    "startedAt",
    "endedAt",
    "type",
    "serviceId",
    "serviceDefinitionId",
    "applicationId",
    "tags",
}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(client, path: str, token: str, body, **headers):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, raw, content_type="application/json", **bearer(token), **headers)


def make_current(owner, name: str = "hub-sum"):
    """A published service whose version is of the current generation (no input schema: any object)."""
    target = make_service(owner, name=name, sample=None)
    target.version.generation = Generation.CURRENT
    target.version.save(update_fields=["generation"])
    return target


@pytest.fixture
def current(provider, user):
    target = make_current(provider)
    app = make_app(user)
    subscribe(app, target)
    return app, target, fetch_token(Client(), app)


def finish(job_id, **fields):
    now = timezone.now()
    Job.objects.filter(pk=job_id).update(started_at=now, ended_at=now, **fields)


def add_file(job_id, name: str, content: bytes, media_type: str = "application/octet-stream") -> JobResultFile:
    result_file = JobResultFile(job_id=job_id, name=name, size_bytes=len(content), media_type=media_type)
    result_file.file.save(name, ContentFile(content), save=False)
    result_file.save()
    return result_file


def test_post_takes_top_level_input_and_answers_the_current_execution_object(client, current):
    app, service, token = current
    response = post(client, service.path, token, {"values": [1, 2], "$tags": ["nightly", "a"], "$other": 1})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == EXECUTION_KEYS
    assert body["status"] == "PENDING"
    assert body["type"] == "MANAGED"
    assert body["serviceId"] == str(service.service.id)
    assert body["serviceDefinitionId"] == str(service.version.id)
    assert body["applicationId"] == str(app.application.id)
    assert body["tags"] == ["nightly", "a"]
    assert response["Location"].endswith(f"{service.path}{body['id']}")
    job = Job.objects.get(pk=body["id"])
    # The program's input is the request without the platform's "$" keys.
    assert job.data == {"values": [1, 2]}
    assert job.params is None
    status = client.get(f"{service.path}{body['id']}", **bearer(token))
    assert status.json() == body


@pytest.mark.parametrize(
    "body",
    [{"$secrets": ["x"]}, {"$secrets": {"token": 5}}, {"$secrets": {"1bad": "x"}}, {"$tags": "x"}, {"$tags": [1]}],
)
def test_bad_secrets_and_tags_are_refused_with_a_code_and_nothing_is_queued(client, current, body):
    _, service, token = current
    response = post(client, service.path, token, {"values": [1], **body})
    assert 400 <= response.status_code < 500
    assert set(response.json()) >= {"code", "detail"}
    assert "x" not in response.json()["detail"].split()  # the value is not repeated back
    assert Job.objects.count() == 0


def test_a_secret_is_stored_only_sealed(client, current):
    _, service, token = current
    response = post(client, service.path, token, {"values": [1], "$secrets": {"ibmToken": "s3cr3t-value-42"}})
    assert response.status_code == 201
    assert b"s3cr3t-value-42" not in response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert "s3cr3t-value-42" not in json.dumps(job.data)
    assert job.secrets_ciphertext
    assert b"s3cr3t-value-42" not in bytes(job.secrets_ciphertext)


def test_status_polling_still_costs_one_query(client, current, django_assert_max_num_queries):
    _, service, token = current
    job_id = post(client, service.path, token, {"values": [1]}).json()["id"]
    with django_assert_max_num_queries(1):
        response = client.get(f"{service.path}{job_id}", **bearer(token))
    assert response.json()["serviceDefinitionId"] == str(service.version.id)


def test_get_root_lists_only_the_callers_executions_in_pages(client, current, provider):
    _app, service, token = current
    mine = [post(client, service.path, token, {"n": n}).json()["id"] for n in range(3)]
    # Another subscriber of the same service, and the owner's own run from the portal.
    other_app = make_app(make_user("other@example.com"), name="other")
    subscribe(other_app, service)
    other_token = fetch_token(Client(), other_app)
    theirs = post(client, service.path, other_token, {"n": 9}).json()["id"]
    from jobs.admission import execution_admit

    execution_admit(service_version=service.version, owner=provider, data={"n": 7})

    listing = client.get(service.path, **bearer(token))
    assert listing.status_code == 200
    ids = [execution["id"] for execution in listing.json()]
    assert ids == list(reversed(mine))  # newest first, nobody else's
    assert theirs not in ids
    assert all(set(execution) == EXECUTION_KEYS for execution in listing.json())
    assert listing["X-Total-Count"] == "3"
    assert "Link" not in listing

    first = client.get(f"{service.path}?page=0&size=2", **bearer(token))
    assert [e["id"] for e in first.json()] == list(reversed(mine))[:2]
    assert 'rel="next"' in first["Link"]
    assert "page=1&size=2" in first["Link"]
    second = client.get(f"{service.path}?page=1&size=2", **bearer(token))
    assert [e["id"] for e in second.json()] == [mine[0]]
    assert 'rel="prev"' in second["Link"]
    assert client.get(f"{service.path}?page=5&size=2", **bearer(token)).json() == []

    assert [e["id"] for e in client.get(service.path, **bearer(other_token)).json()] == [theirs]


@pytest.mark.parametrize("query", ["page=-1", "page=x", "size=0", "size=201", "size=1.5", "page=99999999999"])
def test_bad_pages_are_400(client, current, query):
    _, service, token = current
    response = client.get(f"{service.path}?{query}", **bearer(token))
    assert response.status_code == 400
    assert response.json()["code"] == "input:bad-page"


def test_result_is_hal_with_the_fields_at_the_top_level_and_file_links(client, current):
    _app, service, token = current
    job_id = post(client, service.path, token, {"values": [1]}).json()["id"]
    assert client.get(f"{service.path}{job_id}/result", **bearer(token)).status_code == 409
    finish(job_id, status=JobStatus.SUCCEEDED, result={"sum": 3, "_links": "spoofed"})
    add_file(job_id, "counts.csv", b"a,b\n1,2\n", "text/csv")
    add_file(job_id, "plot a.png", b"\x89PNG")

    body = client.get(f"{service.path}{job_id}/result", **bearer(token)).json()
    assert body["sum"] == 3
    base = f"http://testserver{service.path}{job_id}"
    assert body["_links"] == {
        "self": {"href": f"{base}/result"},
        "status": {"href": base},
        "counts.csv": {"href": f"{base}/result/counts.csv"},
        "plot a.png": {"href": f"{base}/result/plot%20a.png"},
    }
    assert body["_embedded"]["status"]["id"] == job_id
    assert body["_embedded"]["status"]["status"] == "SUCCEEDED"
    assert set(body) == {"sum", "_links", "_embedded"}


@pytest.mark.parametrize(("value", "fields"), [(42, {"value": 42}), ("text", {"value": "text"}), ([1], {"value": [1]})])
def test_a_return_value_that_is_not_an_object_is_under_value(client, current, value, fields):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    finish(job_id, status=JobStatus.SUCCEEDED, result=value)
    body = client.get(f"{service.path}{job_id}/result", **bearer(token)).json()
    assert {k: v for k, v in body.items() if not k.startswith("_")} == fields


def test_a_failed_execution_has_code_and_detail_in_its_hal_result(client, current):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    finish(job_id, status=JobStatus.FAILED, error_code="job:failed", error_detail="boom")
    body = client.get(f"{service.path}{job_id}/result", **bearer(token)).json()
    assert (body["code"], body["detail"]) == ("job:failed", "boom")
    assert body["_embedded"]["status"]["status"] == "FAILED"


def test_result_files_stream_with_type_and_disposition_for_the_caller_only(client, current):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    finish(job_id, status=JobStatus.SUCCEEDED, result={})
    add_file(job_id, "page.html", b"<script>alert(1)</script>", "text/html")

    response = client.get(f"{service.path}{job_id}/result/page.html", **bearer(token))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Disposition"].startswith("attachment")
    assert 'filename="page.html"' in response["Content-Disposition"]
    # Never rendered in the gateway's origin.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]

    missing = client.get(f"{service.path}{job_id}/result/other.txt", **bearer(token))
    assert missing.status_code == 404
    assert missing.json()["code"] == "execution:result-file-not-found"

    # Another subscriber of the same service asks for that file: the execution does not exist for them.
    other_app = make_app(make_user("other@example.com"), name="other")
    subscribe(other_app, service)
    other = client.get(f"{service.path}{job_id}/result/page.html", **bearer(fetch_token(Client(), other_app)))
    assert other.status_code == 404
    assert other.json()["code"] == "execution:not-found"
    assert b"alert" not in other.content


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fsettings.py", "%2E%2E", "..", "page.html%00", "%2Fetc%2Fpasswd", "PAGE.HTML", "page.html%2F.."],
)
def test_no_path_tricks_reach_a_file(client, current, name):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    finish(job_id, status=JobStatus.SUCCEEDED, result={})
    add_file(job_id, "page.html", b"secret-content")
    response = client.get(f"{service.path}{job_id}/result/{name}", **bearer(token))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert b"secret-content" not in response.content


def test_log_is_structured_entries_and_204_while_none(client, current):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    empty = client.get(f"{service.path}{job_id}/log", **bearer(token))
    assert empty.status_code == 204
    assert empty.content == b""
    JobLogChunk.objects.create(job_id=job_id, seq=1, text="starting\nWARNING:root:half ")
    JobLogChunk.objects.create(job_id=job_id, seq=2, text="way\ndone\n")
    entries = client.get(f"{service.path}{job_id}/log", **bearer(token)).json()
    assert [(e["message"], e["severity"]) for e in entries] == [
        ("starting", "INFO"),
        ("WARNING:root:half way", "WARNING"),
        ("done", "INFO"),
    ]
    assert all(e["timestamp"].endswith("Z") and "T" in e["timestamp"] for e in entries)


def test_cancel_answers_the_current_execution_object(client, current):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    response = client.put(f"{service.path}{job_id}/cancel", **bearer(token))
    assert response.status_code == 200
    assert set(response.json()) == EXECUTION_KEYS
    assert response.json()["status"] == "CANCELLED"


def test_another_callers_execution_is_404_on_every_route(client, current):
    _, service, token = current
    job_id = post(client, service.path, token, {}).json()["id"]
    finish(job_id, status=JobStatus.SUCCEEDED, result={"sum": 1})
    JobLogChunk.objects.create(job_id=job_id, seq=1, text="private line\n")
    other_app = make_app(make_user("other@example.com"), name="other")
    subscribe(other_app, service)
    other_token = fetch_token(Client(), other_app)
    for suffix in ("", "/result", "/log", "/logs", "/interim-results"):
        response = client.get(f"{service.path}{job_id}{suffix}", **bearer(other_token))
        assert response.status_code == 404, suffix
        assert response.json()["code"] == "execution:not-found"
    assert client.put(f"{service.path}{job_id}/cancel", **bearer(other_token)).status_code == 404
    assert client.get(f"{service.path}{uuid.uuid4()}/log", **bearer(token)).status_code == 404


def test_the_endpoint_with_its_trailing_slash_works_as_sdks_join_it(client, current):
    # planqk-service-sdk 2.x: urljoin(endpoint + "/", path) with the portal's endpoint ".../1.0.0/".
    _, service, token = current
    created = post(client, f"{service.path}/", token, {})
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert client.get(f"{service.path}/{job_id}", **bearer(token)).json()["id"] == job_id
    assert client.get(f"{service.path}/", **bearer(token)).status_code == 200


def test_documented_versions_keep_their_answers_and_gain_log_and_files(client, subscribed):
    _, service, token = subscribed
    assert client.get(service.path, **bearer(token)).json() == {"status": "Service is up and running"}
    body = {"data": {"values": [1, 2]}, "params": {"round_off": False}}
    created = post(client, service.path, token, body)
    assert set(created.json()) == {"id", "status", "createdAt", "startedAt", "endedAt"}
    job_id = created.json()["id"]
    assert client.get(f"{service.path}{job_id}/log", **bearer(token)).status_code == 204
    finish(job_id, status=JobStatus.SUCCEEDED, result={"sum": 3}, result_metadata=None)
    result = client.get(f"{service.path}{job_id}/result", **bearer(token)).json()
    assert result == {"result": {"sum": 3}, "metadata": None}
    assert set(client.get(f"{service.path}{job_id}", **bearer(token)).json()) == {
        "id",
        "status",
        "createdAt",
        "startedAt",
        "endedAt",
    }
    add_file(job_id, "extra.txt", b"hello")
    download = client.get(f"{service.path}{job_id}/result/extra.txt", **bearer(token))
    assert b"".join(download.streaming_content) == b"hello"
