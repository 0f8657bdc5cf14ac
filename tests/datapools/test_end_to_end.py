"""A reference copied from a data pool, used as dataRef/paramsRef in a gateway call and in a job.

A live portal and a real Celery worker run the sum sample with the local runtime; the pool belongs to
another user and is shared, so the caller's access rights are what is tested, not the owner's.
"""

from __future__ import annotations

import time

import pytest
import requests

from datapools import selectors, services
from jobs.models import Job
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import make_user, token_for

pytestmark = pytest.mark.django_db(transaction=True)
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"}


def wait_final(url: str, headers: dict, deadline_seconds: float = 120) -> dict:
    deadline = time.monotonic() + deadline_seconds
    while True:
        body = requests.get(url, headers=headers, timeout=10).json()
        if body["status"] in FINAL or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.fixture
def remove_pools_afterwards():
    """The worker shares the configured media folder: leave nothing behind in it."""
    yield
    from datapools.models import DataPool

    for pool in DataPool.objects.select_related("owner"):
        services.datapool_delete(user=pool.owner, pool=pool)


@pytest.mark.usefixtures("remove_pools_afterwards")
def test_shared_pool_references_work_in_the_gateway_and_in_jobs(live_server, celery_worker, media_root):
    owner = make_user("data-owner@example.com")
    caller = make_user("caller@example.com")
    stranger = make_user("stranger@example.com")
    provider = make_user("provider@example.com")
    target = make_service(provider, name="sum")

    # The owner uploads input and parameters through the REST API and shares the pool read-only.
    owner_api = {"Authorization": f"Bearer {token_for(owner)}"}
    pool = requests.post(f"{live_server.url}/api/v1/datapools/", json={"name": "Sum inputs"}, headers=owner_api)
    pool_id = pool.json()["id"]
    refs = {}
    for name, content in {
        "data.json": b'{"values": [100, 50, 200, 70, 0.69]}',
        "params.json": b'{"round_off": true}',
    }.items():
        response = requests.post(
            f"{live_server.url}/api/v1/datapools/{pool_id}/files/", files={"file": (name, content)}, headers=owner_api
        )
        assert response.status_code == 201, response.text
        refs[name] = response.json()["reference"]
    pool_obj = selectors.datapool_get(user=owner, pool_id=pool_id)
    services.datapool_share(user=owner, pool=pool_obj, email=caller.email, permission="READ")

    # The caller's application calls the service with both references.
    app = make_app(caller)
    subscribe(app, target)
    token = requests.post(
        f"{live_server.url}/gateway/token", data={"grant_type": "client_credentials"}, auth=(app.key, app.secret)
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    endpoint = f"{live_server.url}{target.path}"
    created = requests.post(
        endpoint, json={"dataRef": refs["data.json"], "paramsRef": refs["params.json"]}, headers=bearer
    )
    assert created.status_code == 201, created.text
    assert wait_final(created.headers["Location"], bearer)["status"] == "SUCCEEDED"
    assert requests.get(f"{endpoint}{created.json()['id']}/result", headers=bearer).json()["result"] == {"sum": 420}

    # Someone the pool is not shared with gets the data pool's error at once, as JSON.
    other = make_app(stranger)
    subscribe(other, target)
    other_token = requests.post(
        f"{live_server.url}/gateway/token", data={"grant_type": "client_credentials"}, auth=(other.key, other.secret)
    ).json()["access_token"]
    refused = requests.post(
        endpoint, json={"dataRef": refs["data.json"]}, headers={"Authorization": f"Bearer {other_token}"}
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "datapool:not-found"

    # A job from the REST API with the same references saves its result into a pool the caller can write.
    results = services.datapool_create(user=caller, name="My results")
    caller_api = {"Authorization": f"Bearer {token_for(caller)}"}
    job = requests.post(
        f"{live_server.url}/api/v1/jobs/",
        json={
            "service_id": str(target.service.pk),
            "dataRef": refs["data.json"],
            "paramsRef": refs["params.json"],
            "save_result_to_pool": True,
            "result_pool_id": str(results.pk),
        },
        headers=caller_api,
    )
    assert job.status_code == 201, job.text
    finished = wait_final(f"{live_server.url}/api/v1/jobs/{job.json()['id']}/", caller_api)
    assert finished["status"] == "SUCCEEDED", finished
    saved = Job.objects.get(pk=job.json()["id"]).result_file
    assert saved is not None
    assert saved.pool == results
    assert saved.name.endswith(".json")
    assert selectors.datafile_read_json(user=caller, ref=saved.reference, max_bytes=10_000)["result"] == {"sum": 420}
    assert (media_root / saved.file.name).is_file()
