"""The token endpoint limits each client: the 11th request in a minute is 429 with Retry-After
and an RFC 6749 error body, against the production server; other clients are not affected."""

from __future__ import annotations

import time

import pytest
import requests

from tests.applications.conftest import make_app

pytestmark = pytest.mark.django_db(transaction=True)


def _token(server, key: str, secret: str) -> requests.Response:
    return requests.post(
        f"{server.url}/gateway/token", data={"grant_type": "client_credentials"}, auth=(key, secret), timeout=10
    )


def _fresh_minute() -> None:
    # The counter's window is the calendar minute: start early in one, so all 11 fall into it.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def test_eleventh_token_request_of_a_client_in_a_minute_is_429(production_server, user):
    app, other = make_app(user, "busy"), make_app(user, "calm")
    _fresh_minute()
    statuses = [_token(production_server, app.key, app.secret).status_code for _ in range(10)]
    assert statuses == [200] * 10
    refused = _token(production_server, app.key, app.secret)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    body = refused.json()
    assert body["error"] == "temporarily_unavailable"
    assert "access_token" not in body
    assert isinstance(body["error_description"], str)
    assert refused.headers["Cache-Control"] == "no-store"
    assert _token(production_server, other.key, other.secret).status_code == 200


def test_guessing_a_clients_secret_is_limited_too(production_server, user):
    app = make_app(user, "guessed")
    _fresh_minute()
    statuses = [_token(production_server, app.key, f"wrong-{n}").status_code for n in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    # Even the right secret waits for the window now.
    assert _token(production_server, app.key, app.secret).status_code == 429
