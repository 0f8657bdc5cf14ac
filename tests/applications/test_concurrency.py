"""The plan's concurrent-execution limit holds when requests arrive at the same moment."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from jobs.models import Job
from tests.applications.conftest import make_app, make_service, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_starts_never_exceed_max_concurrent(production_server, user, provider):
    # No worker runs, so every started execution stays PENDING and keeps its slot.
    target = make_service(provider, name="narrow", sample=None, max_concurrent=2, requests_per_minute=1000)
    app = make_app(user)
    subscribe(app, target)
    token = requests.post(
        f"{production_server.url}/gateway/token",
        data={"grant_type": "client_credentials"},
        auth=(app.key, app.secret),
        timeout=10,
    ).json()["access_token"]
    attempts = 8
    barrier = Barrier(attempts)

    def start(_: int) -> int:
        barrier.wait(timeout=10)
        return requests.post(
            f"{production_server.url}{target.path}",
            json={"data": {"values": [1]}, "params": {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(attempts) as pool:
        statuses = sorted(pool.map(start, range(attempts)))
    assert statuses == [201, 201] + [429] * (attempts - 2)
    assert Job.objects.filter(subscription__application_id=app.application.pk).count() == 2
