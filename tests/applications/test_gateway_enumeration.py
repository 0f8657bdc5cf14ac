"""The gateway's cold path tells nobody without a subscription which services exist."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.applications.conftest import fetch_token, make_app, make_service, subscribe

pytestmark = pytest.mark.django_db

BODY = json.dumps({"data": {"values": [1]}, "params": {}})


def _answers(client, base: str, headers: dict) -> list[tuple[int, bytes]]:
    calls = [
        client.get(base, **headers),
        client.post(base, BODY, content_type="application/json", **headers),
        client.get(f"{base}{uuid.uuid4()}", **headers),
        client.get(f"{base}{uuid.uuid4()}/result", **headers),
        client.put(f"{base}{uuid.uuid4()}/cancel", **headers),
    ]
    return [(response.status_code, response.content) for response in calls]


def test_an_unsubscribed_caller_cannot_tell_existing_services_from_missing_ones(client, provider, sum_service, user):
    hidden = make_service(provider, name="internal", lifecycle="ACCESSIBLE")
    stranger = make_app(user, "prober")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {fetch_token(client, stranger)}"}
    published = _answers(client, sum_service.path, headers)
    internal = _answers(client, hidden.path, headers)
    missing_name = _answers(client, f"/gateway/{provider.uuid}/no-such-service/1.0.0/", headers)
    missing_owner = _answers(client, f"/gateway/{uuid.uuid4()}/sum/1.0.0/", headers)
    not_a_uuid = _answers(client, "/gateway/not-a-uuid/sum/1.0.0/", headers)
    assert published == internal == missing_name == missing_owner == not_a_uuid
    status, body = published[0]
    assert status == 403  # the contract's answer for "not subscribed", the same for every address
    assert json.loads(body)["code"] == "subscription:required"

    # Without a valid token it is 401 everywhere, before anything about the address is looked at.
    anonymous = {"HTTP_AUTHORIZATION": "Bearer not-a-token"}
    assert _answers(client, sum_service.path, anonymous) == _answers(client, "/gateway/x/y/1/", anonymous)


def test_a_subscriber_keeps_the_precise_answers(client, provider, sum_service, user):
    app = make_app(user, "subscriber")
    subscribe(app, sum_service)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {fetch_token(client, app)}"}
    unknown_version = client.get(f"/gateway/{provider.uuid}/sum/9.9.9/", **headers)
    assert unknown_version.status_code == 404
    unknown_job = client.get(f"{sum_service.path}{uuid.uuid4()}", **headers)
    assert unknown_job.status_code == 404
    assert client.get(sum_service.path, **headers).status_code == 200
