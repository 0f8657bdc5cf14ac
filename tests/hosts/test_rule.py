"""The settlement rule's edges without worker processes: host states, and a reaper that lost a
race changes nothing (every change is conditional on what it saw)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import WorkerHost
from hosts.selectors import HostState, host_state
from hosts.services import host_beat
from jobs import engine
from jobs.models import Job, JobStatus
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _a_queue_family_nobody_reads(settings):
    """What the reaper enqueues here (a hand-over, a re-run) stays in the queue: the session's
    celery_worker, when an earlier test started it, would claim a handed-over job at once (seen in
    a full CI run) and these tests look at the job as the rule left it."""
    from planqk_portal.celery import app

    saved = app.conf.task_default_queue
    settings.CELERY_TASK_DEFAULT_QUEUE = app.conf.task_default_queue = f"rule-{uuid.uuid4().hex[:8]}"
    yield
    app.conf.task_default_queue = saved


def running_job(user, make_version, *, worker: str, seconds_ago: float, **fields) -> Job:
    """A RUNNING job whose execution started on ``worker``; its heartbeat ``seconds_ago`` old."""
    version = make_version(user, "sum")
    past = timezone.now() - timedelta(seconds=seconds_ago)
    return Job.objects.create(
        service=version.service,
        service_version=version,
        owner=user,
        status=JobStatus.RUNNING,
        started_at=past,
        heartbeat_at=past,
        worker=worker,
        runtime="local",
        runtime_handle={"execution_id": "job-x", "dir": "/nonexistent"},
        runtime_starts=1,
        enqueue_count=1,
        **fields,
    )


def silent(name: str, seconds: float) -> None:
    host_beat(name=name, runtimes=["local"])
    WorkerHost.objects.filter(name=name).update(last_seen=timezone.now() - timedelta(seconds=seconds))


def test_host_states_follow_the_heartbeat(settings):
    assert host_state("") == HostState.UNKNOWN
    assert host_state("never-seen") == HostState.UNKNOWN
    host_beat(name="h1", runtimes=["local"])
    assert host_state("h1") == HostState.ALIVE
    silent("h1", settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS + 1)
    assert host_state("h1") == HostState.SILENT
    silent("h1", settings.PLANQK_HOST_LOST_SECONDS + 1)
    assert host_state("h1") == HostState.LOST
    host_beat(name="h1", runtimes=["docker"])  # back: alive again, one row
    assert host_state("h1") == HostState.ALIVE
    assert list(WorkerHost.objects.values_list("name", "runtimes")) == [("h1", ["docker"])]


def test_a_worker_that_beat_after_the_reaper_looked_keeps_its_job(user, make_version, settings):
    job = running_job(user, make_version, worker="h1:1:a", seconds_ago=settings.PLANQK_HOST_LOST_SECONDS + 60)
    silent("h1", settings.PLANQK_HOST_LOST_SECONDS + 60)
    seen = Job.objects.select_related("service").get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())  # the worker was only slow
    assert engine.job_settle_stale(seen, now=timezone.now()) == "waiting"
    job.refresh_from_db()
    assert (job.status, job.worker, job.runtime_starts) == (JobStatus.RUNNING, "h1:1:a", 1)
    assert job.runtime_handle is not None


def test_a_job_cancelled_while_the_reaper_looked_is_not_run_again(user, make_version, settings):
    job = running_job(user, make_version, worker="h1:1:a", seconds_ago=settings.PLANQK_HOST_LOST_SECONDS + 60)
    silent("h1", settings.PLANQK_HOST_LOST_SECONDS + 60)
    seen = Job.objects.select_related("service").get(pk=job.pk)
    Job.objects.finish(job.pk, status=JobStatus.CANCELLED, code="job:cancelled", detail="by the owner")
    assert engine.job_settle_stale(seen, now=timezone.now()) == "waiting"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_a_job_of_a_worker_without_a_host_row_is_handed_over_as_before(user, make_version, settings):
    job = running_job(user, make_version, worker="old-worker", seconds_ago=settings.PLANQK_HOST_LOST_SECONDS + 60)
    assert engine.job_reap()["handed_over"] == 1
    job.refresh_from_db()
    assert (job.status, job.worker) == (JobStatus.RUNNING, "")
    assert job.runtime_handle is not None  # reattach, not a fresh start


def test_a_job_on_a_silent_host_waits(user, make_version, settings):
    job = running_job(user, make_version, worker="h1:1:a", seconds_ago=settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS + 5)
    silent("h1", settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS + 5)
    assert engine.job_reap()["waiting"] == 1
    job.refresh_from_db()
    assert (job.status, job.worker, job.enqueue_count) == (JobStatus.RUNNING, "h1:1:a", 1)


def test_a_rerun_has_an_execution_name_of_its_own_that_the_orphan_sweep_understands(user, make_version):
    job = running_job(user, make_version, worker="h1:1:a", seconds_ago=0)
    assert engine.execution_id(job) == f"job-{job.pk}-run2"
    Job.objects.filter(pk=job.pk).update(runtime_starts=0)
    job.refresh_from_db()
    assert engine.execution_id(job) == f"job-{job.pk}"

    class Leftover:
        execution_id = f"job-{job.pk}-run2"
        started_at = None

    assert engine._is_orphan(Leftover) is False  # its job still runs
    Job.objects.finish(job.pk, status=JobStatus.FAILED, code="platform:host-lost", detail="x")
    assert engine._is_orphan(Leftover) is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLANQK_HOST_NAME": "a:b"}, "PLANQK_HOST_NAME must be"),
        ({"PLANQK_HOST_NAME": "../x"}, "PLANQK_HOST_NAME must be"),
        ({"PLANQK_HOST_LOST_SECONDS": "60", "PLANQK_JOB_HEARTBEAT_STALE_SECONDS": "60"}, "must be longer than"),
    ],
)
def test_settings_refuse_a_host_name_or_lost_time_the_rule_cannot_use(env, message):
    completed = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "planqk_portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode != 0
    assert "ImproperlyConfigured" in completed.stderr
    assert message in completed.stderr


def test_an_execution_a_rerun_superseded_is_removed_and_the_rerun_left_alone(user, make_version):
    """One machine, a worker restarted after its host counted as lost: the old execution outlived
    its worker, the job started again; the sweep stops the old one, never the new one."""
    from pathlib import Path

    from jobs.runtime_factory import get_runtime
    from runtimes import ExecutionSpec

    version = make_version(user, "slow")
    runtime = get_runtime(version.runtime)
    job = Job.objects.create(
        service=version.service,
        service_version=version,
        owner=user,
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker="",
        runtime_starts=1,  # the first run started; the re-run dropped its handle and is starting
    )

    def start(execution_id: str):
        build = runtime.build_handle(version.build_handle)
        return runtime.start(ExecutionSpec(execution_id=execution_id, build=build, params={"steps": 600}))

    old = start(engine.execution_id(Job(id=job.pk, runtime_starts=0)))
    new = start(engine.execution_id(job))
    assert new.execution_id.endswith("-run2")
    try:
        assert engine.job_reap_orphans() == 1
        assert not Path(old.dir).exists()
        assert runtime.poll(new).running
        # Once the re-run is recorded, it is the job's execution and stays.
        Job.objects.filter(pk=job.pk).update(runtime_starts=2, runtime_handle=new.to_json())
        assert engine.job_reap_orphans() == 0
        assert runtime.poll(new).running
    finally:
        for handle in (old, new):
            runtime.cleanup(handle)


@pytest.mark.parametrize(
    ("run", "starts", "handle", "superseded"),
    [
        (1, 0, None, False),  # being started
        (1, 1, {"h": 1}, False),  # running
        (1, 1, None, True),  # re-run dropped it
        (2, 1, None, False),  # the re-run being started
        (1, 2, {"h": 2}, True),
        (2, 2, {"h": 2}, False),
    ],
)
def test_which_run_is_superseded(run, starts, handle, superseded):
    assert engine._superseded(run, starts, handle) is superseded


def test_operators_see_each_host_and_its_state_in_the_admin(client, settings):
    from accounts.models import User

    host_beat(name="alive-host", runtimes=["local"])
    silent("lost-host", settings.PLANQK_HOST_LOST_SECONDS + 1)
    admin = User.objects.create_superuser(email="ops@example.com", password="x-long-password-1")
    client.force_login(admin)
    page = client.get("/admin/hosts/workerhost/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "alive-host" in text
    assert "lost-host" in text
    assert ">lost<" in text
    assert ">alive<" in text
    assert client.get("/admin/hosts/workerhost/add/").status_code == 403


def test_a_handed_over_job_whose_host_is_then_lost_follows_the_host_loss_rule(user, make_version, settings):
    """Handed to its live host (a worker there may reattach), nobody on that host takes it, and
    then the host is lost: the rule for a lost host applies (run again), not a second hand-over to
    any host, where no worker could reattach to the execution."""
    job = running_job(user, make_version, worker="h1:1:a", seconds_ago=settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS + 5)
    host_beat(name="h1", runtimes=["local"])
    seen = Job.objects.select_related("service").get(pk=job.pk)
    assert engine.job_settle_stale(seen, now=timezone.now()) == "handed_over"
    job.refresh_from_db()
    assert engine.worker_host(job.worker) == "h1"  # the handed-over job still says whose execution it is

    # No worker of h1 claims it; h1 goes silent past the lost time and the job's heartbeat is stale.
    past = timezone.now() - timedelta(seconds=settings.PLANQK_HOST_LOST_SECONDS + 60)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=past)
    silent("h1", settings.PLANQK_HOST_LOST_SECONDS + 60)
    seen = Job.objects.select_related("service").get(pk=job.pk)
    assert engine.job_settle_stale(seen, now=timezone.now()) == "rerun"
    job.refresh_from_db()
    assert (job.status, job.runtime_handle, job.worker) == (JobStatus.RUNNING, None, "")


def test_a_handed_over_job_is_claimed_by_a_new_worker(user, make_version, settings):
    job = running_job(user, make_version, worker="h1:1:a", seconds_ago=settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS + 5)
    host_beat(name="h1", runtimes=["local"])
    assert engine.job_settle_stale(Job.objects.select_related("service").get(pk=job.pk), now=timezone.now())
    assert Job.objects.claim(job.pk, worker="h1:2:b")
    assert not Job.objects.claim(job.pk, worker="h1:3:c")  # taken: once only
    job.refresh_from_db()
    assert job.worker == "h1:2:b"


def test_a_host_of_another_queue_family_does_not_count_as_one_of_ours(user, make_version):
    """A live host consuming another PLANQK_QUEUE family takes none of this platform's queues: a
    waiting job must not be told it has a host, and housekeeping is not sent to it."""
    from hosts.housekeeping import housekeeping_fan_out
    from hosts.routing import why_no_host
    from hosts.selectors import hosts_alive

    host_beat(name="elsewhere", runtimes=["local"], family="another-platform")
    host_beat(name="here", runtimes=["docker"])
    assert {host.name for host in hosts_alive()} == {"here"}
    version = make_version(user, "sum")
    assert "runtime local" in why_no_host(version, hosts_alive())
    housekeeping_fan_out()
    assert WorkerHost.objects.get(name="elsewhere").housekeeping_sent_at is None
    assert WorkerHost.objects.get(name="here").housekeeping_sent_at is not None
