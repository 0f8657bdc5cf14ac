"""Two worker hosts on this machine, one database and broker: host A is killed mid-job (its
worker, pool and the execution, SIGKILL), and the job ends as the settlement rule says
(jobs.engine.job_settle_stale), exactly once, with its logs kept.

The version is built by this test process in its own data directory; each host materialises
it in its own from the build's lock and the version's archive (issue 22 item 1) on its first job.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from hosts.models import WorkerHost
from jobs import engine
from jobs.models import InterimResult, Job, JobStatus
from jobs.tasks import execute_job
from tests.conftest import make_user
from tests.jobs.conftest import log_text, wait_final, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def subscribed_job(version, subscriber, **fields) -> Job:
    """A PENDING job of ``subscriber`` under a per-execution plan (70 cents), not enqueued."""
    from applications.models import Subscription
    from applications.services import application_create
    from services.models import PricingPlan

    plan = PricingPlan.objects.create(service=version.service, name="Per run", kind="PER_EXECUTION", price_cents=70)
    application = application_create(owner=subscriber, name=f"app-{uuid.uuid4().hex[:6]}").application
    subscription = Subscription.objects.create(
        application=application, service=version.service, plan=plan, plan_kind="PER_EXECUTION", price_cents=70
    )
    return Job.objects.create(
        service=version.service,
        service_version=version,
        owner=subscriber,
        application=application,
        subscription=subscription,
        enqueue_count=1,
        **fields,
    )


def let_time_pass(job: Job, host: str, *, seconds: float) -> None:
    """What a silent host looks like ``seconds`` later: neither the job nor the host beat since."""
    past = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=past)
    assert WorkerHost.objects.filter(name=host).update(last_seen=past) == 1


def lost_seconds() -> float:
    from django.conf import settings

    return settings.PLANQK_HOST_LOST_SECONDS + 5


def start_on_host_a(start_host, version, subscriber, params):
    """Host A takes the job (its own queue), host B waits on this run's queue for what follows."""
    host_a = start_host("host-a", queue=f"host-a-{uuid.uuid4().hex[:8]}")
    host_b = start_host("host-b")
    job = subscribed_job(version, subscriber, params=params)
    execute_job.apply_async(args=[str(job.pk)], queue=host_a.queue)
    wait_for(lambda: "started on host host-a" in log_text(job), timeout=90)
    wait_for(lambda: WorkerHost.objects.filter(name="host-b").exists(), timeout=30)
    return host_a, host_b, job


def usage_of(job: Job) -> list[tuple[str, int]]:
    from payments.models import UsageRecord

    return list(UsageRecord.objects.filter(job=job).values_list("status", "price_cents"))


def test_a_job_on_a_lost_host_runs_again_on_the_other_host_once(user, make_version, start_host):
    version = make_version(make_user(), "slow", lifecycle="PUBLISHED")
    host_a, host_b, job = start_on_host_a(start_host, version, user, {"steps": 2, "sleep": 8})
    assert Job.objects.get(pk=job.pk).worker.startswith("host-a:")
    host_a.crash()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert not InterimResult.objects.filter(job=job).exists()  # killed before its first step ended

    # Silent, but not yet lost: nothing is decided, so a slow host never sees its job run twice.
    let_time_pass(job, "host-a", seconds=engine.heartbeat_stale_seconds() + 5)
    assert engine.job_reap()["waiting"] == 1
    assert Job.objects.get(pk=job.pk).worker == job.worker

    let_time_pass(job, "host-a", seconds=lost_seconds())
    counts = engine.job_reap()
    assert counts["rerun"] == 1, counts
    job = wait_final(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail, log_text(job))
    assert job.result["steps"] == 2
    assert job.worker.startswith("host-b:")
    assert job.runtime_starts == 2  # it ran twice, and the job says so
    assert usage_of(job) == [("SUCCEEDED", 70)]  # billed once
    logs = log_text(job)
    assert logs.index("host host-a: environment and code materialised") < logs.index("started on host host-a")
    assert logs.index("host host-b: environment and code materialised") < logs.index("started on host host-b")
    assert logs.index("started on host host-a") < logs.index("host host-a stopped answering")
    assert logs.index("host host-a stopped answering") < logs.index("started on host host-b")
    assert logs.count("step 1 of 2 done") == 1, logs
    assert logs.count("step 2 of 2 done") == 1, logs
    assert list(InterimResult.objects.filter(job=job).values_list("seq", flat=True)) == [1, 2]

    # Once: reaping again changes nothing.
    engine.job_reap()
    again = Job.objects.get(pk=job.pk)
    assert (again.status, again.ended_at, again.runtime_starts) == (JobStatus.SUCCEEDED, job.ended_at, 2)
    assert usage_of(job) == [("SUCCEEDED", 70)]
    assert host_b.proc.poll() is None


@pytest.mark.parametrize("case", ["interim-result", "retry-off"])
def test_a_job_on_a_lost_host_that_may_not_run_again_fails_unbilled_once(user, make_version, start_host, case):
    retry = case == "interim-result"
    version = make_version(make_user(), "slow", lifecycle="PUBLISHED", retry_on_host_loss=retry)
    params = {"steps": 30, "sleep": 1} if retry else {"steps": 1, "sleep": 60}
    host_a, _host_b, job = start_on_host_a(start_host, version, user, params)
    if case == "interim-result":
        wait_for(lambda: InterimResult.objects.filter(job=job).exists(), timeout=60)
    host_a.crash()
    let_time_pass(job, "host-a", seconds=lost_seconds())
    counts = engine.job_reap()
    assert counts["host_lost"] == 1, counts

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error_code == "platform:host-lost"
    assert "not charged" in job.error_detail
    assert not job.billable
    assert job.runtime_starts == 1  # host B never started it
    assert usage_of(job) == [("FAILED", 0)]
    logs = log_text(job)
    assert "started on host host-a" in logs
    assert "host host-a stopped answering" in logs
    assert "started on host host-b" not in logs
    if case == "interim-result":
        assert "step 1 of 30 done" in logs  # what ran on host A is kept
        assert "already published interim results" in logs
    else:
        assert "does not allow running an execution again" in logs

    engine.job_reap()
    assert Job.objects.get(pk=job.pk).ended_at == job.ended_at
    assert usage_of(job) == [("FAILED", 0)]


def test_a_lost_host_that_comes_back_writes_nothing_into_its_job_and_stops_its_execution(
    user,
    make_version,
    start_host,
):
    from jobs.runtime_factory import get_runtime

    version = make_version(make_user(), "slow", lifecycle="PUBLISHED")
    host_a, _host_b, job = start_on_host_a(start_host, version, user, {"steps": 2, "sleep": 8})
    first = Job.objects.get(pk=job.pk)
    host_a.pause()  # cut off: its worker and its execution are frozen, not gone
    let_time_pass(first, "host-a", seconds=lost_seconds())
    assert engine.job_reap()["rerun"] == 1
    wait_for(lambda: Job.objects.filter(pk=job.pk, worker__startswith="host-b:", runtime_starts=2).exists())
    host_a.resume()

    # Host A's worker finds the job is not its own any more and stops its own execution.
    runtime = get_runtime(first.runtime)
    old_execution = runtime.execution_handle(first.runtime_handle)
    wait_for(lambda: "settled without this worker" in host_a.log(), timeout=60)
    wait_for(lambda: not runtime.poll(old_execution).running, timeout=60)
    job = wait_final(job)
    assert job.status == JobStatus.SUCCEEDED, (job.error_code, job.error_detail, log_text(job))
    assert job.worker.startswith("host-b:")
    assert usage_of(job) == [("SUCCEEDED", 70)]
    logs = log_text(job)
    # Only host B's run reached the log after the re-run: host A wrote nothing into it.
    assert logs.count("step 1 of 2 done") == 1, logs
    assert logs.count("step 2 of 2 done") == 1, logs
    assert list(InterimResult.objects.filter(job=job).values_list("seq", flat=True)) == [1, 2]
    assert host_a.proc.poll() is None  # it lives on, and owns nothing
