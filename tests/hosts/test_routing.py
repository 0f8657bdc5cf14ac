"""Routing (hosts.routing): every road into the queue lands where the version's runtime or the
service's pin says; workers consume only what their host runs; a pin is the operators' alone.

What was published is read from Celery's own ``before_task_publish`` signal (the message really
goes to the broker); a test with real workers shows a Docker-only host never takes a local job.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import WorkerHost
from hosts.services import host_beat
from jobs import engine
from jobs.models import Job, JobStatus
from services.models import BuildStatus, Service, ServiceVersion
from tests.conftest import ROOT, api_client_for, make_user
from tests.jobs.conftest import log_text, wait_final, wait_for

SUM_INPUT = {"data": {"values": [1, 2]}, "params": {}}


def runs(**env: str) -> dict[str, str]:
    """A host's environment: ``env``, and this process's data directory, where ``make_version``
    built the version (routing is tested here, not how a host materialises a build)."""
    from django.conf import settings

    return {"PLANQK_DATA_DIR": str(settings.PLANQK_DATA_DIR), **env}


@pytest.fixture
def queues(settings):
    """A default queue of this test's own (D), so no other worker of the run takes what it sends;
    returns the list of (task name, queue) of every message published, and purges them after."""
    from celery.signals import before_task_publish

    from planqk_portal.celery import app

    own = f"routing-{uuid.uuid4().hex[:8]}"
    saved = app.conf.task_default_queue
    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE = own
    seen: list[tuple[str, str]] = []

    def record(sender: str | None = None, routing_key: str | None = None, **kwargs: object) -> None:
        seen.append((str(sender), str(routing_key)))

    before_task_publish.connect(record, weak=False)
    try:
        yield seen
    finally:
        before_task_publish.disconnect(record)
        app.conf.task_default_queue = saved
        with app.connection_for_write() as connection:
            for name in {queue for _task, queue in seen}:
                connection.default_channel.queue_purge(name)


@pytest.fixture
def provider(user):
    """The user, able to create services (a card on file)."""
    from payments.testing import add_test_card

    add_test_card(user)
    return user


def d(suffix: str = "") -> str:
    """This test's queue family: ``d(".runtime.local")``."""
    from django.conf import settings

    return settings.CELERY_TASK_DEFAULT_QUEUE + suffix


def version_on(version: ServiceVersion, runtime: str) -> ServiceVersion:
    """The same version as if ``runtime`` had built it (no job of it runs in these tests)."""
    ServiceVersion.objects.filter(pk=version.pk).update(runtime=runtime)
    return ServiceVersion.objects.select_related("service").get(pk=version.pk)


def admit(version: ServiceVersion, owner) -> Job:
    from jobs.admission import execution_admit

    return execution_admit(service_version=version, owner=owner, **SUM_INPUT)


# --- every road -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_job_goes_to_its_versions_runtime_or_its_services_pin(
    queues, make_version, user, django_capture_on_commit_callbacks
):
    version = make_version(user, "sum")
    with django_capture_on_commit_callbacks(execute=True):
        admit(version, user)
        admit(version_on(version, "docker"), user)
        admit(version_on(version, "external"), user)  # needs nothing of a host: any worker
        Service.objects.filter(pk=version.service_id).update(queue="gpu")
        admit(version_on(version, "local"), user)
    assert queues == [
        ("jobs.tasks.execute_job", d(".runtime.local")),
        ("jobs.tasks.execute_job", d(".runtime.docker")),
        ("jobs.tasks.execute_job", d()),
        ("jobs.tasks.execute_job", d(".pin.gpu")),
    ]


@pytest.mark.django_db
def test_the_reapers_roads_requeue_hand_over_and_rerun_are_routed(
    queues, make_version, user, settings, django_capture_on_commit_callbacks
):
    version = version_on(make_version(user, "sum"), "docker")
    long_ago = timezone.now() - timedelta(seconds=settings.PLANQK_HOST_LOST_SECONDS + 60)
    stale = timezone.now() - timedelta(seconds=settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS + 5)
    lost = Job.objects.create(service=version.service, service_version=version, owner=user, enqueue_count=1)
    pending = Job.objects.create(service=version.service, service_version=version, owner=user, enqueue_count=1)
    handed = Job.objects.create(service=version.service, service_version=version, owner=user, enqueue_count=1)
    Job.objects.filter(pk=pending.pk).update(created_at=long_ago)
    for job, host in ((lost, "lost-host"), (handed, "live-host")):
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.RUNNING,
            started_at=stale,
            heartbeat_at=stale,
            worker=f"{host}:123:abcdef12",
            runtime_handle={"runtime": "docker", "container": "x"},
        )
    host_beat(name="live-host", runtimes=["docker"])
    host_beat(name="lost-host", runtimes=["docker"])
    WorkerHost.objects.filter(name="lost-host").update(last_seen=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        counts = engine.job_reap()
    assert (counts["requeued"], counts["handed_over"], counts["rerun"]) == (1, 1, 1), counts
    assert sorted(queues) == sorted(
        [
            ("jobs.tasks.execute_job", d(".runtime.docker")),  # the PENDING job, once more
            ("jobs.tasks.execute_job", d(".host.live-host")),  # reattached only where it runs
            ("jobs.tasks.execute_job", d(".runtime.docker")),  # run again on another docker host
        ]
    )


@pytest.mark.django_db
def test_builds_rebuilds_requeues_and_removals_are_routed(
    queues, provider, settings, django_capture_on_commit_callbacks
):
    user = provider
    from planqk_samples import sample_zip
    from services import builds, services

    settings.PLANQK_RUNTIME = "docker"  # the platform's runtime builds
    with django_capture_on_commit_callbacks(execute=True):
        service = services.service_create(owner=user, name="routed", archive=sample_zip("sum"))
    assert queues == [("services.tasks.build_service_version", d(".runtime.docker"))]

    Service.objects.filter(pk=service.pk).update(queue="hardware-token")
    service.refresh_from_db()
    version = service.versions.get()
    ServiceVersion.objects.filter(pk=version.pk).update(status=BuildStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        services.service_version_retry(version=version)
    assert queues[-1] == ("services.tasks.build_service_version", d(".pin.hardware-token"))

    ServiceVersion.objects.filter(pk=version.pk).update(created_at=timezone.now() - timedelta(days=1))
    assert builds.service_builds_requeue() == 1
    assert queues[-1] == ("services.tasks.build_service_version", d(".pin.hardware-token"))

    with django_capture_on_commit_callbacks(execute=True):
        second = services.service_version_create(service=service, user=user, archive=sample_zip("sum"))
    assert queues[-1] == ("services.tasks.build_service_version", d(".pin.hardware-token"))

    ServiceVersion.objects.filter(pk=version.pk).update(runtime="local", build_handle={"env_key": "x"})
    ServiceVersion.objects.filter(pk=second.pk).update(runtime="docker", build_handle={"image": "x"})
    del queues[:]
    with django_capture_on_commit_callbacks(execute=True):
        services.service_delete(service=service)
    assert sorted(queues) == [
        ("services.tasks.remove_service_builds", d(".runtime.docker")),
        ("services.tasks.remove_service_builds", d(".runtime.local")),
    ]


@pytest.mark.django_db
def test_stored_values_never_become_part_of_a_queue_name(
    queues, make_version, user, django_capture_on_commit_callbacks
):
    from hosts import routing

    version = version_on(make_version(user, "sum"), "../../etc")
    Service.objects.filter(pk=version.service_id).update(queue="a.b/../x")  # edited in the database
    version.service.refresh_from_db()
    assert routing.queue_for_execution(version) == d()  # an unknown runtime: any worker fails it clearly
    assert routing.queue_for_build(version) == d(".runtime.local")  # the pin is ignored, not followed
    assert routing.queue_for_handover(version, host="evil host/..") == d()
    with pytest.raises(ValueError):
        routing.pinned_queue("GPU")
    with django_capture_on_commit_callbacks(execute=True):
        admit(version_on(version, "local"), user)
    assert queues == [("jobs.tasks.execute_job", d(".runtime.local"))]


def test_a_host_must_name_runtimes_and_queues_the_platform_knows():
    def settings_error(**env: str) -> str:
        import os

        run = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "planqk_portal.settings", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode != 0
        return run.stderr.strip().splitlines()[-1]

    assert "unknown runtime 'gpu'" in settings_error(PLANQK_HOST_RUNTIMES="local,gpu")
    assert "'../x' is not a queue name" in settings_error(PLANQK_WORKER_QUEUES="gpu,../x")


# --- who may pin ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_provider_cannot_pin_their_service_through_the_api_or_the_edit_page(provider, client):
    user = provider
    from services import services

    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    api = api_client_for(user)
    url = f"/api/v1/services/{service.pk}/"
    shown = api.get(url).json()
    assert (shown["queue"], shown["retry_on_host_loss"]) == ("", True)

    refused = api.patch(url, {"queue": "hardware-token", "retry_on_host_loss": False}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "service:queue-read-only"
    created = api.post(
        "/api/v1/services/", {"name": "pinned", "external_url": "https://q.example.org/", "queue": "gpu"}
    )
    assert created.status_code == 400
    assert not Service.objects.filter(name="pinned").exists()

    client.force_login(user)
    values = {"title": "", "description": "", "quantum_backend": "NONE", "cpus": "1", "memory_mb": 1024}
    response = client.post(f"/services/{service.pk}/edit/", {**values, "timeout_seconds": 60, "queue": "gpu"})
    assert response.status_code == 302
    assert Service.objects.get(pk=service.pk).queue == ""


@pytest.mark.django_db
def test_the_owner_sets_retry_on_host_loss_through_the_api(provider, other_user):
    user = provider
    from services import services

    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    url = f"/api/v1/services/{service.pk}/"
    changed = api_client_for(user).patch(url, {"retry_on_host_loss": False}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["retry_on_host_loss"] is False
    assert Service.objects.get(pk=service.pk).retry_on_host_loss is False
    assert api_client_for(user).patch(url, {"retry_on_host_loss": "yes"}, format="json").status_code == 400
    assert api_client_for(other_user).patch(url, {"retry_on_host_loss": True}, format="json").status_code == 404
    assert Service.objects.get(pk=service.pk).retry_on_host_loss is False


@pytest.mark.django_db
def test_operators_pin_a_service_in_the_admin_and_other_staff_cannot(provider, client):
    user = provider
    from django.contrib.auth.models import Permission

    from services import services

    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    url = f"/admin/services/service/{service.pk}/change/"
    editor = make_user("editor@example.com")
    editor.is_staff = True
    editor.save()
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_service", "change_service"]))
    client.force_login(editor)
    page = client.get(url).content.decode()
    assert 'name="title"' in page  # staff who may edit services...
    assert 'name="queue"' not in page  # ...see the pin read-only, not as a field

    operator = make_user("operator@example.com")
    operator.is_staff = operator.is_superuser = True
    operator.save()
    client.force_login(operator)
    page = client.get(url).content.decode()
    assert 'name="queue"' in page
    form = {
        field: getattr(service, field)
        for field in ("name", "title", "description", "quantum_backend", "source", "external_url", "lifecycle")
    }
    form.update(owner=user.pk, memory_mb=service.memory_mb, cpus=service.cpus, timeout_seconds=service.timeout_seconds)
    form.update(retry_on_host_loss="on", queue="hardware-token", publish_on_ready="")
    form.update({"versions-TOTAL_FORMS": 0, "versions-INITIAL_FORMS": 0})
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Service.objects.get(pk=service.pk).queue == "hardware-token"


# --- real hosts ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_docker_only_host_never_takes_a_local_job(make_version, start_host, user):
    from jobs.services import job_enqueue

    docker_host = start_host("docker-only", env=runs(PLANQK_HOST_RUNTIMES="docker"))
    version = make_version(user, "sum")
    first = Job.objects.create(service=version.service, service_version=version, owner=user, **SUM_INPUT)
    with_no_local_host = timezone.now() - timedelta(seconds=engine.heartbeat_stale_seconds() + 5)
    Job.objects.filter(pk=first.pk).update(created_at=with_no_local_host)
    job_enqueue(job_id=first.pk)
    wait_for(lambda: WorkerHost.objects.filter(name="docker-only").exists(), timeout=30)
    announced = WorkerHost.objects.get(name="docker-only")
    assert (announced.runtimes, announced.queues, announced.capacity) == (["docker"], [], 1)

    # Only the docker host is up: the job waits, and its log says why.
    assert engine.job_reap()["unserved"] == 1
    assert Job.objects.get(pk=first.pk).status == JobStatus.PENDING
    assert "no worker host runs runtime local" in log_text(first)
    assert engine.job_reap()["unserved"] == 0  # said once

    local_host = start_host("local-only", env=runs(PLANQK_HOST_RUNTIMES="local"))
    jobs = [first] + [
        Job.objects.create(service=version.service, service_version=version, owner=user, **SUM_INPUT) for _ in range(2)
    ]
    for job in jobs[1:]:
        job_enqueue(job_id=job.pk)
    for job in jobs:
        done = wait_final(job)
        assert done.status == JobStatus.SUCCEEDED, (done.error_code, done.error_detail, log_text(done))
        assert done.worker.startswith("local-only:"), done.worker
    assert "Task jobs.tasks.execute_job[" not in docker_host.log()  # it received none
    assert local_host.proc.poll() is None


@pytest.mark.django_db(transaction=True)
def test_a_pinned_service_waits_for_a_host_consuming_its_queue(make_version, start_host, user, client):
    from jobs.services import job_enqueue

    start_host("plain", env=runs(PLANQK_HOST_RUNTIMES="local"))
    version = make_version(user, "sum", queue="hardware-token")
    job = Job.objects.create(service=version.service, service_version=version, owner=user, **SUM_INPUT)
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(seconds=engine.heartbeat_stale_seconds() + 5)
    )
    job_enqueue(job_id=job.pk)
    wait_for(lambda: WorkerHost.objects.filter(name="plain").exists(), timeout=30)
    assert engine.job_reap()["unserved"] == 1
    assert "no worker host consumes the queue hardware-token" in log_text(job)
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING
    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "waiting: no worker host consumes the queue hardware-token" in page  # the job page says why

    start_host("token-host", env=runs(PLANQK_WORKER_QUEUES="hardware-token"))
    done = wait_final(job)
    assert done.status == JobStatus.SUCCEEDED, (done.error_code, done.error_detail, log_text(done))
    assert done.worker.startswith("token-host:")
    assert WorkerHost.objects.get(name="token-host").queues == ["hardware-token"]
