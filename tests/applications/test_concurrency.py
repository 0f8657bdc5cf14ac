"""The plan's concurrent-execution limit holds when requests arrive at the same moment."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from jobs.models import Job
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import ServerProcess, start_production_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def unserved_production_server(settings) -> Iterator[ServerProcess]:
    """A production server whose executions go to a queue no worker reads: they stay PENDING and
    keep their slots (a worker ending one mid-test would free a slot), and none runs afterwards."""
    server = start_production_server({"PLANQK_QUEUE": f"{settings.CELERY_TASK_DEFAULT_QUEUE}-unserved"})
    yield server
    server.stop()


def test_simultaneous_starts_never_exceed_max_concurrent(unserved_production_server, user, provider):
    production_server = unserved_production_server
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
