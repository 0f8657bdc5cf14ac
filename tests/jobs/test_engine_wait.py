"""The engine follows an execution by waiting for it (``Runtime.wait``), not by polling on a clock.

On the real local runtime in this process: with ``PLANQK_ENGINE_WAIT=events`` (the default) a quiet
execution is looked at when something is due (the cancel check every 0.25 s, the heartbeat) and when
it ends; with ``poll`` (the clock alone, as before) it is looked at every 10 ms at first. Counted by
a spy on the engine's own runtime object, which still does the real work.
"""

from __future__ import annotations

import pytest

from jobs import engine
from jobs.admission import execution_admit
from jobs.models import InterimResult, Job, JobStatus
from tests.jobs.conftest import log_text

pytestmark = pytest.mark.django_db

QUIET = """
import time
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    print("PlanQK:Job:InterimResult: " + '{"step": 1}', flush=True)
    time.sleep(1.5)
    print("done sleeping", flush=True)
    return ResultResponse(result={"slept": 1.5})
"""


def _run_counting_polls(user, make_version, monkeypatch) -> tuple[Job, int]:
    version = make_version(user, "sum", program=QUIET)
    runtime = engine.runtime_for(version.runtime or None)
    polls = []
    real_poll = runtime.poll

    def counting_poll(handle):
        polls.append(1)
        return real_poll(handle)

    monkeypatch.setattr(runtime, "poll", counting_poll)
    job = execution_admit(service_version=version, owner=user, data={}, params={})
    engine.execute_job(str(job.id))
    return Job.objects.get(pk=job.pk), len(polls)


def test_with_events_a_quiet_execution_is_looked_at_only_when_something_is_due(
    user, make_version, monkeypatch, settings
):
    settings.PLANQK_ENGINE_WAIT = "events"
    job, polls = _run_counting_polls(user, make_version, monkeypatch)
    assert job.status == JobStatus.SUCCEEDED, job.error_detail
    assert job.result == {"slept": 1.5}
    # Output still reaches the job: the interim result and both lines, woken by the output itself.
    assert list(InterimResult.objects.filter(job=job).values_list("payload", flat=True)) == [{"step": 1}]
    assert "done sleeping" in log_text(job)
    # 1.5 s quiet: a cancel check every 0.25 s, the wakes for its output and its end; the clock
    # would have looked 50 times in the first half second alone.
    assert polls <= 20, polls


def test_on_the_clock_the_same_execution_is_polled_every_few_milliseconds(user, make_version, monkeypatch, settings):
    settings.PLANQK_ENGINE_WAIT = "poll"
    job, polls = _run_counting_polls(user, make_version, monkeypatch)
    assert job.status == JobStatus.SUCCEEDED, job.error_detail
    assert list(InterimResult.objects.filter(job=job).values_list("payload", flat=True)) == [{"step": 1}]
    assert polls > 30, polls
