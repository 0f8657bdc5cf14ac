"""The demo catalogue for real: every seeded implementation becomes a service, is built by a real
worker on the local runtime, and its spec's example input runs to the expected kind of result.
Also a git import through the worker."""

from __future__ import annotations

import io

import pytest

from algorithms import services
from algorithms.catalogue import DEMO_ALGORITHMS
from algorithms.models import Implementation
from jobs.admission import execution_admit
from jobs.models import Job
from jobs.selectors import service_version_example
from payments.testing import add_test_card
from services.models import ServiceVersion
from tests.algorithms.conftest import wait_for
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_media")]

EXPECTED = {
    "Bell pair on Qiskit Aer": lambda r: set(r["counts"]) <= {"00", "11"} and sum(r["counts"].values()) == 1024,
    "Grover search on Qiskit Aer": lambda r: r["found"] == "101" and r["success_probability"] > 0.8,
    "QAOA depth 1 on Qiskit Aer": lambda r: r["cut_value"] == 4.0,
    "QUBO with simulated annealing": lambda r: (
        r["difference"] == 0 and sorted(r["first"] + r["second"]) == sorted([25, 7, 13, 31, 42, 17, 21, 10])
    ),
}


def test_every_demo_implementation_runs_its_example(celery_worker):
    from algorithms.demo import seed_demo

    community = make_user("community@example.com")
    seed_demo(community, io.StringIO())
    seed_demo(community, io.StringIO())  # idempotent
    assert Implementation.objects.count() == len(DEMO_ALGORITHMS) == 4
    runner = make_user("runner@example.com")
    add_test_card(runner)

    made = {}
    for implementation in Implementation.objects.all():
        file = implementation.files.get()
        service, created = services.service_from_implementation_file(file=file, user=runner)
        assert created
        made[implementation.name] = service
    for name, service in made.items():
        version = wait_for(
            lambda s=service: ServiceVersion.objects.filter(service=s, status__in=["READY", "FAILED"]).first(),
            timeout=900,
        )
        log = "".join(version.log_chunks.order_by("seq").values_list("text", flat=True))
        assert version.status == "READY", f"{name}: {version.build_error}\n{log}"
        data, params = service_version_example(version=version)
        assert data is not None, name
        assert params is not None, name
        job = execution_admit(service_version=version, owner=runner, data=data, params=params)
        job = wait_for(lambda j=job: (x := Job.objects.get(pk=j.pk)).is_final and x, timeout=300)
        assert job.status == "SUCCEEDED", f"{name}: {job.error_code} {job.error_detail}"
        assert EXPECTED[name](job.result), f"{name}: {job.result}"
    for implementation in Implementation.objects.all():
        assert services.selectors.implementation_usage(implementation=implementation) == {"services": 1, "jobs": 1}


def test_a_git_import_is_fetched_by_the_worker(celery_worker, tmp_path, settings):
    import http.server
    import threading

    from tests.algorithms.conftest import make_algorithm
    from tests.algorithms.test_git import _Quiet, _sum_files, make_repository

    www = tmp_path / "www"
    www.mkdir()
    _bare, _commit = make_repository(www, _sum_files())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **kw: _Quiet(*a, directory=str(www), **kw))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        owner = make_user("owner@example.com")
        implementation = services.implementation_create(algorithm=make_algorithm(owner), owner=owner, name="git")
        url = f"http://127.0.0.1:{server.server_address[1]}/code.git"
        row = services.implementation_git_import(implementation=implementation, user=owner, url=url)
        # The session's worker runs with the default outbound rules: loopback is refused there.
        row = wait_for(lambda: (r := type(row).objects.get(pk=row.pk)).status in ("READY", "FAILED") and r, timeout=120)
        assert (row.status, row.error_code) == ("FAILED", "git:private-address")
    finally:
        server.shutdown()
        server.server_close()
