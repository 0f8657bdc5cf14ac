"""One table of requests against both servers of the service API: the gateway and `planqk serve`.

For every row, both answer with the same HTTP status, a body of the same shape (keys and the
types of their values) and the same ``code``. The gateway runs under Django's test server and
under the production server (``portal``), with a real worker; `planqk serve` on the same sample
(``slow``, with 3600 one-second steps, so an execution is never final before the test cancels
it: the 409 of an early result is deterministic). Each table row is sent as raw HTTP, so bodies
can be anything an attacker sends: not JSON, not UTF-8, a BOM, a Content-Length that lies.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.applications.conftest import make_app, make_service, subscribe
from tests.cli.conftest import Cli, Served, start_serve
from tests.conftest import ServerProcess, make_user

pytestmark = pytest.mark.django_db(transaction=True)

JOB_KEYS = {"id", "status", "createdAt", "startedAt", "endedAt"}
STATUSES = {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
#: The slow sample runs this long unless cancelled: nothing ends during the test by itself.
SLOW = {"steps": 3600, "sleep": 1}
GOOD = {"data": {"values": [1, 2]}, "params": SLOW}
REF = {"dataPoolId": "a", "dataSourceDescriptorId": "b", "fileId": "c"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    def shape(self) -> Any:
        return shape(self.body)


def shape(value: Any) -> Any:
    """Keys and value types; the job object is checked and becomes one marker."""
    if isinstance(value, dict):
        if set(value) == JOB_KEYS:
            assert value["status"] in STATUSES, value
            assert isinstance(value["id"], str), value
            assert value["id"], value
            for key in ("createdAt", "startedAt", "endedAt"):
                assert value[key] is None or TIMESTAMP.match(value[key]), value
            assert value["createdAt"] is not None, value
            return "<job object>"
        return {key: shape(child) for key, child in value.items()}
    if isinstance(value, list):
        return ["<list>"]  # contents differ (log lines, interim results so far)
    return type(value).__name__


@dataclass
class Server:
    """One server of the service API: the service's root URL and the headers a client sends."""

    name: str
    root: str  # ends with /
    headers: dict[str, str]
    jobs: list[str] = field(default_factory=list)

    def send(
        self,
        method: str,
        path: str = "",
        body: bytes | None = None,
        *,
        headers: dict[str, str] | None = None,
        content_length: int | None = None,
        half_close: bool = False,
        chunks: list[bytes] | None = None,
    ) -> Answer:
        """A raw HTTP request to ``root + path`` (the body sent as given, Content-Length as told)."""
        url = urlsplit(self.root + path)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            connection.putrequest(method, url.path, skip_accept_encoding=True)
            for name, value in {**self.headers, **(headers or {})}.items():
                connection.putheader(name, value)
            if chunks is not None:
                connection.putheader("Transfer-Encoding", "chunked")
                connection.endheaders()
                for chunk in chunks:
                    connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                connection.send(b"0\r\n\r\n")
            else:
                if body is not None or content_length is not None:
                    length = len(body or b"") if content_length is None else content_length
                    connection.putheader("Content-Length", str(length))
                connection.endheaders(body)
            if half_close:
                connection.sock.shutdown(socket.SHUT_WR)
            response = connection.getresponse()
            raw = response.read()
            headers_ = {key.lower(): value for key, value in response.getheaders()}
        finally:
            connection.close()
        assert headers_.get("content-type", "").startswith("application/json"), (self.name, raw[:200])
        return Answer(response.status, headers_, json.loads(raw) if raw else None)

    def post(self, document: Any, **kwargs: Any) -> Answer:
        answer = self.send("POST", "", json.dumps(document).encode(), **kwargs)
        if answer.status == 201:
            self.jobs.append(answer.body["id"])
        return answer


def deep(depth: int) -> bytes:
    return b'{"data": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"


@dataclass
class Row:
    """A request (``path`` may name ``{job}``, an execution that is not final) and what both answer."""

    name: str
    status: int
    code: str | None
    method: str
    path: str = ""
    body: bytes | dict | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def send(self, server: Server, job: str) -> Answer:
        body = json.dumps(self.body).encode() if isinstance(self.body, dict) else self.body
        return server.send(self.method, self.path.format(job=job), body, **self.options)


MALFORMED, NOT_AN_OBJECT, DEEP = "input:malformed-json", "input:not-an-object", "input:too-deep"
CHARACTERS, NOT_ALLOWED, NOT_FOUND = "input:invalid-characters", "method-not-allowed", "execution:not-found"
ROWS = [
    Row("GET /", 200, None, "GET"),
    Row("HEAD /", 200, None, "HEAD"),
    Row("POST by value", 201, None, "POST", body=GOOD),
    Row("POST strings and arrays", 201, None, "POST", body={"data": {"v": [1], "t": "x"}, "params": SLOW}),
    Row(
        "POST duplicate keys: the last wins",
        201,
        None,
        "POST",
        body=b'{"data": [1], "data": {}, "params": {}}',
    ),
    Row("POST data and dataRef", 400, "input:both-value-and-ref", "POST", body={"data": {}, "dataRef": REF}),
    Row("POST params and paramsRef", 400, "input:both-value-and-ref", "POST", body={"params": {}, "paramsRef": "x"}),
    Row("POST dataRef not a reference", 400, "datapool:bad-reference", "POST", body={"dataRef": "file"}),
    Row("POST not JSON", 400, MALFORMED, "POST", body=b"{"),
    Row("POST a JSON list", 400, NOT_AN_OBJECT, "POST", body=b"[1, 2, 3]"),
    Row("POST a JSON string", 400, NOT_AN_OBJECT, "POST", body=b'"data"'),
    Row("POST data a list", 400, NOT_AN_OBJECT, "POST", body={"data": [1, 2]}),
    Row("POST params a string", 400, NOT_AN_OBJECT, "POST", body={"params": "x"}),
    Row("POST NaN", 400, MALFORMED, "POST", body=b'{"data": {"x": NaN}}'),
    Row("POST -Infinity", 400, MALFORMED, "POST", body=b'{"data": {"x": -Infinity}}'),
    Row("POST 1e999 (parsed as infinity)", 400, "input:not-json", "POST", body=b'{"data": {"x": 1e999}}'),
    Row("POST a 5000-digit integer", 400, MALFORMED, "POST", body=b'{"data": {"x": ' + b"9" * 5000 + b"}}"),
    Row("POST 150 levels deep", 400, DEEP, "POST", body=deep(150)),
    Row("POST 100000 levels deep", 400, DEEP, "POST", body=deep(100_000)),
    Row("POST deep arrays", 400, DEEP, "POST", body=b'{"data": {"a": ' + b"[" * 3000 + b"]" * 3000 + b"}}"),
    Row("POST NUL", 400, CHARACTERS, "POST", body=b'{"data": {"x": "a\\u0000b"}}'),
    Row("POST lone surrogate", 400, CHARACTERS, "POST", body=b'{"params": {"x": "\\ud800"}}'),
    Row("POST lone surrogate in a key", 400, CHARACTERS, "POST", body=b'{"data": {"\\udfff": 1}}'),
    Row("POST not UTF-8", 400, MALFORMED, "POST", body=b'{"data": {"x": "\xff"}}'),
    Row("POST a BOM", 400, MALFORMED, "POST", body=b"\xef\xbb\xbf{}"),
    Row("POST data too large", 413, "input:too-large", "POST", body={"data": {"blob": "x" * 1_100_000}}),
    Row("POST body too large, unread", 413, "input:too-large", "POST", body=b"", options={"content_length": 3_000_000}),
    Row(
        "POST Content-Length short",
        400,
        MALFORMED,
        "POST",
        body=json.dumps(GOOD).encode(),
        options={"content_length": 5},
    ),
    Row(
        "POST Content-Length long, then EOF",
        400,
        MALFORMED,
        "POST",
        body=b'{"data": {}',
        options={"content_length": 100, "half_close": True},
    ),
    Row("DELETE /", 405, NOT_ALLOWED, "DELETE"),
    Row("PUT /", 405, NOT_ALLOWED, "PUT", body=b"{}"),
    Row("POST /{id}", 405, NOT_ALLOWED, "POST", "{job}", b"{}"),
    Row("GET /{id}/cancel", 405, NOT_ALLOWED, "GET", "{job}/cancel"),
    Row("DELETE /{id}/result", 405, NOT_ALLOWED, "DELETE", "{job}/result"),
    Row("GET /{unknown id}", 404, NOT_FOUND, "GET", UNKNOWN_ID),
    Row("GET /{not a uuid}", 404, NOT_FOUND, "GET", "not-a-uuid"),
    Row("GET /{unknown id}/result", 404, NOT_FOUND, "GET", f"{UNKNOWN_ID}/result"),
    Row("GET /{unknown id}/logs", 404, NOT_FOUND, "GET", f"{UNKNOWN_ID}/logs"),
    Row("PUT /{unknown id}/cancel", 404, NOT_FOUND, "PUT", f"{UNKNOWN_ID}/cancel"),
    Row("GET /{id}/unknown", 404, "not_found", "GET", "{job}/unknown"),
    Row("GET /{id}", 200, None, "GET", "{job}"),
    Row("GET /{id}/ (trailing slash)", 200, None, "GET", "{job}/"),
    Row("GET /{id}/result before final", 409, "execution:not-finished", "GET", "{job}/result"),
    Row("GET /{id}/interim-results", 200, None, "GET", "{job}/interim-results"),
    Row("GET /{id}/logs", 200, None, "GET", "{job}/logs"),
]


@pytest.fixture(scope="module")
def serve_slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`planqk serve` on the slow sample."""
    from planqk_samples import sample_files

    root = tmp_path_factory.mktemp("serve-parity")
    folder = root / "slow"
    for relative, content in sample_files("slow").items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    (root / "home").mkdir()
    server = start_serve(Cli(home=root / "home", cwd=folder), Path(folder))
    yield server
    server.stop()


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


@pytest.fixture
def servers(portal, celery_worker, serve_slow, user, provider) -> Iterator[tuple[Server, Server]]:
    """(the gateway, `planqk serve`) on the slow sample; every execution is cancelled afterwards."""
    import requests

    target = make_service(provider, name="slow", sample="slow")
    app = make_app(user)
    subscribe(app, target)
    token = requests.post(
        f"{portal.url}/gateway/token", data={"grant_type": "client_credentials"}, auth=(app.key, app.secret), timeout=30
    ).json()["access_token"]
    common = {"Accept": "application/json", "Content-Type": "application/json"}
    gateway = Server("gateway", f"{portal.url}{target.path}", {**common, "Authorization": f"Bearer {token}"})
    serve = Server("planqk serve", f"{serve_slow.url}/", {**common, "Authorization": "Bearer anything-goes-locally"})
    yield gateway, serve
    for server in (gateway, serve):
        for job_id in server.jobs:
            server.send("PUT", f"{job_id}/cancel")
    _wait_all_final(gateway)


def _wait_all_final(server: Server) -> None:
    """Nothing may run on after the test (the worker would read while the tables are flushed)."""
    deadline = time.monotonic() + 60
    for job_id in server.jobs:
        while server.send("GET", job_id).body["status"] not in ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"):
            assert time.monotonic() < deadline, f"{server.name}: {job_id} did not end"
            time.sleep(0.2)


def test_both_servers_answer_every_request_alike(servers):
    job = {server.name: server.post(GOOD).body["id"] for server in servers}
    differences = []
    for row in ROWS:
        name, status, code = row.name, row.status, row.code
        answers = {server.name: row.send(server, job[server.name]) for server in servers}
        for server_name, answer in answers.items():
            if answer.status != status or (code and (answer.body or {}).get("code") != code):
                differences.append(f"{name}: {server_name} answered {answer.status} {answer.body!r:.300}")
        first, second = answers.values()
        if first.shape() != second.shape():
            differences.append(f"{name}: shapes differ: {first.shape()} vs {second.shape()}")
        if status == 405 and first.headers.get("allow") != second.headers.get("allow"):
            differences.append(f"{name}: Allow {first.headers.get('allow')} vs {second.headers.get('allow')}")
        if status == 201:
            for server, answer in zip(servers, answers.values(), strict=True):
                if answer.body["id"] not in server.jobs:
                    server.jobs.append(answer.body["id"])
                if answer.body["status"] != "PENDING":
                    differences.append(f"{name}: {server.name} answered {answer.body['status']}, not PENDING")
                if answer.headers.get("location") != f"{server.root}{answer.body['id']}":
                    differences.append(f"{name}: {server.name}'s Location is {answer.headers.get('location')}")
    assert not differences, "\n".join(differences)


def test_cancel_and_the_result_of_a_cancelled_execution(servers):
    answers = {}
    for server in servers:
        job_id = server.post(GOOD).body["id"]
        cancelled = server.send("PUT", f"{job_id}/cancel")
        assert cancelled.status == 200, (server.name, cancelled.body)
        assert cancelled.shape() == "<job object>"
        assert cancelled.body["status"] == "CANCELLED", (server.name, cancelled.body)
        assert cancelled.body["endedAt"] is not None
        again = server.send("PUT", f"{job_id}/cancel")
        assert (again.status, again.body["status"]) == (200, "CANCELLED")
        result = server.send("GET", f"{job_id}/result")
        answers[server.name] = result
        assert result.status == 200, (server.name, result.body)
        assert result.shape() == {"code": "str", "detail": "str"}
        assert result.body["code"] == "job:cancelled", (server.name, result.body)
        assert server.send("GET", job_id).body["status"] == "CANCELLED"


def test_a_chunked_body_where_the_server_can_read_it(servers, portal):
    """The production server (and planqk serve) read a chunked body, capped; Django's test server cannot: 411."""
    gateway, serve = servers
    small = [b'{"data": {"values": [1, 2]}', b', "params": {"steps": 3600}}']
    large = [b'{"data": {"blob": "', *([b"x" * 100_000] * 25), b'"}}']
    for server in (gateway, serve) if isinstance(portal, ServerProcess) else (serve,):
        created = server.send("POST", "", chunks=small)
        assert created.status == 201, (server.name, created.body)
        server.jobs.append(created.body["id"])
        assert created.body["status"] == "PENDING"
        too_large = server.send("POST", "", chunks=large)
        assert (too_large.status, too_large.body["code"]) == (413, "input:too-large"), server.name
    if not isinstance(portal, ServerProcess):
        refused = gateway.send("POST", "", chunks=small)
        assert (refused.status, refused.body["code"]) == (411, "input:length-required")


def test_planqks_local_api_expectations_hold_on_serve(serve_slow):
    """PlanQK's own local API: creating a job with string and with array input is 201 PENDING with an id."""
    serve = Server("planqk serve", f"{serve_slow.url}/", {"Content-Type": "application/json"})
    try:
        for document in (
            {"data": {"values": [1, 2]}, "params": {"mode": "x", **SLOW}},
            {"data": {"text": "hello", "names": ["a", "b"]}, "params": {"mode": "x", **SLOW}},
            {"data": {"matrix": [[1, 0], [0, 1]]}, "params": {"steps": 3600, "labels": ["x", "y"]}},
        ):
            created = serve.post(document)
            assert created.status == 201, created.body
            assert created.body["status"] == "PENDING"
            assert set(created.body) == JOB_KEYS
            assert created.body["id"]
            assert created.headers["location"] == f"{serve.root}{created.body['id']}"
            assert serve.send("GET", created.body["id"]).body["id"] == created.body["id"]
    finally:
        for job_id in serve.jobs:
            serve.send("PUT", f"{job_id}/cancel")
