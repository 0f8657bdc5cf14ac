"""Dead workers, lost tasks and leftovers: the reaper leaves every job final, none run twice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from jobs import engine
from jobs.models import InterimResult, Job, JobStatus
from jobs.tasks import execute_job
from planqk_portal import reaper
from tests.jobs.conftest import log_text, wait_final, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def make_pending(version, owner, **fields) -> Job:
    """A PENDING job as admission leaves it, but not enqueued (the test decides where it goes)."""
    return Job.objects.create(service=version.service, service_version=version, owner=owner, enqueue_count=1, **fields)


def age_heartbeat(job: Job) -> None:
    """Let time pass for the reaper: the heartbeat is older than the stale limit."""
    past = timezone.now() - timedelta(seconds=engine.heartbeat_stale_seconds() + 60)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=past)


def test_the_jobs_reaper_is_registered():
    assert "jobs.engine.job_reap" in reaper.registered()


@pytest.mark.parametrize("ended_meanwhile", [False, True], ids=["still-running", "ended-meanwhile"])
def test_a_killed_worker_leaves_its_job_to_the_reaper_and_it_runs_once(
    user, make_version, private_worker, celery_worker_factory, ended_meanwhile
):
    from jobs.runtime_factory import get_runtime

    version = make_version(user, "slow")
    celery_worker_factory()  # a healthy worker, ready to take over
    job = make_pending(version, user, params={"steps": 4, "sleep": 1.5})
    queue = f"victim-{uuid.uuid4().hex[:8]}"
    victim = private_worker(queue)
    execute_job.apply_async(args=[str(job.pk)], queue=queue)
    wait_for(lambda: "step 1 of 4 done" in log_text(job), timeout=60)
    victim.kill()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    # The execution outlives the worker: its supervisor runs on.
    runtime = get_runtime(job.runtime)
    if ended_meanwhile:
        wait_for(lambda: not runtime.poll(runtime.execution_handle(job.runtime_handle)).running, timeout=30)
    else:
        assert runtime.poll(runtime.execution_handle(job.runtime_handle)).running

    age_heartbeat(job)
    outcome = reaper.run_all()
    assert "'handed_over': 1" in outcome["jobs.engine.job_reap"]
    job = wait_final(job)

    assert job.status == JobStatus.SUCCEEDED
    assert job.result["steps"] == 4
    assert job.runtime_starts == 1  # started once, by the killed worker
    logs = log_text(job)
    for step in range(1, 5):
        assert logs.count(f"step {step} of 4 done") == 1, logs
    assert "a new worker took over this job" in logs
    assert list(InterimResult.objects.filter(job=job).values_list("seq", flat=True)) == [1, 2, 3, 4]
    # Reaping again changes nothing.
    reaper.run_all()
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_a_job_whose_worker_died_before_the_start_fails_with_a_clear_message(user, make_version):
    version = make_version(user, "sum")
    job = make_pending(version, user)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=timezone.now(), worker="gone:1:x")
    age_heartbeat(job)
    engine.job_reap()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:worker-lost"
    assert "Run the job again" in job.error_detail
    assert job.ended_at is not None


def test_a_pending_job_whose_task_was_lost_is_enqueued_once_and_runs_once(user, make_version, celery_worker_factory):
    version = make_version(user, "sum")
    job = make_pending(version, user, data={"values": [2, 3]})
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
    celery_worker_factory()
    assert engine.job_reap()["requeued"] == 1
    job = wait_final(job)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"sum": 5}
    assert job.runtime_starts == 1
    assert job.enqueue_count == 2

    other = make_pending(version, user)
    Job.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(hours=1), enqueue_count=2)
    assert engine.job_reap()["requeued"] == 0  # only once


def test_a_job_pending_for_a_day_fails(user, make_version):
    job = make_pending(make_version(user, "sum"), user)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=2), enqueue_count=2)
    engine.job_reap()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:not-started"


def test_executions_of_finished_jobs_are_removed_and_others_left_alone(user, make_version):
    from jobs.runtime_factory import get_runtime
    from runtimes import ExecutionHandle, ExecutionSpec

    version = make_version(user, "slow")
    runtime = get_runtime(version.runtime)
    finished = make_pending(version, user)
    Job.objects.filter(pk=finished.pk).update(status=JobStatus.FAILED, ended_at=timezone.now())
    running = make_pending(version, user)
    Job.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())

    def start(execution_id: str) -> ExecutionHandle:
        build = runtime.build_handle(version.build_handle)
        spec = ExecutionSpec(execution_id=execution_id, build=build, params={"steps": 600})
        return runtime.start(spec)

    leftover = start(f"job-{finished.pk}")
    alive = start(f"job-{running.pk}")
    foreign = start(f"bench-{uuid.uuid4().hex[:8]}")  # not a job's execution: never touched
    try:
        assert engine.job_reap_orphans() >= 1
        assert not Path(leftover.dir).exists()
        assert runtime.poll(alive).running
        assert runtime.poll(foreign).running
    finally:
        for handle in (leftover, alive, foreign):
            runtime.cleanup(handle)


def test_the_engine_never_writes_over_a_worker_that_took_over(user, make_version):
    """A worker presumed dead that wakes up finds the job handed over and leaves it alone."""
    version = make_version(user, "sum")
    job = make_pending(version, user, data={"values": [1]})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker="new-owner")
    stale = engine.Execution(Job.objects.get(pk=job.pk), "old-owner")
    assert stale.run() == "handed over"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.worker == "new-owner"
    assert job.runtime_starts == 0
