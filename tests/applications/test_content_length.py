"""An invalid Content-Length (``-5``, ``abc``, ``1e3``) is 400, never read as an empty body: on the
gateway (no job is started) and on the REST API, against both servers."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from jobs.models import Job
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

BAD_LENGTHS = ["-5", "abc", "1e3", "+7", " 0x10"]


def _raw(url: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {parts.hostname}\r\n{head}Connection: close\r\n\r\n".encode() + body
        )
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _refused_for_the_length(answer: bytes) -> None:
    """Refused because of the header, not because the body was read as empty. The production
    server may refuse such a request itself, before Django sees it (a 400 without a JSON body)."""
    if answer.strip().startswith(b"{"):
        assert json.loads(answer)["code"] == "input:bad-content-length"
    else:
        assert b"Traceback" not in answer


def test_gateway_refuses_an_invalid_content_length(portal, user, provider):
    target = make_service(provider, name="cl", sample=None)
    app = make_app(user)
    subscribe(app, target)
    token = requests.post(
        f"{portal.url}/gateway/token", data={"grant_type": "client_credentials"}, auth=(app.key, app.secret), timeout=10
    ).json()["access_token"]
    body = b"{}"
    for length in BAD_LENGTHS:
        status, answer = _raw(
            portal.url,
            "POST",
            target.path,
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Length": length},
            body,
        )
        assert status == 400, (length, answer[:300])
        _refused_for_the_length(answer)
    assert Job.objects.filter(service=target.service).count() == 0


def test_rest_api_refuses_an_invalid_content_length(portal, user, provider):
    target = make_service(provider, name="clrest", sample=None)
    body = json.dumps({"service_id": str(target.service.pk), "data": {}, "params": {}}).encode()
    for length in BAD_LENGTHS:
        status, answer = _raw(
            portal.url,
            "POST",
            "/api/v1/jobs/",
            {
                "Authorization": f"Bearer {token_for(user)}",
                "Content-Type": "application/json",
                "Content-Length": length,
            },
            body,
        )
        assert status == 400, (length, answer[:300])
        _refused_for_the_length(answer)
    assert Job.objects.filter(service=target.service).count() == 0
