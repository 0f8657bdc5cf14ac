"""A real worker keeps its host's row fresh from its main process, under PLANQK_HOST_NAME."""

from __future__ import annotations

import pytest
from django.conf import settings

from hosts.models import WorkerHost
from hosts.selectors import HostState, host_state
from tests.jobs.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_beats_for_its_host_and_stops_beating_when_it_stops(start_host):
    host = start_host("beating-host")
    first = wait_for(lambda: WorkerHost.objects.filter(name="beating-host").first(), timeout=30)
    assert first.runtimes == [settings.PLANQK_RUNTIME or "local"]
    assert host_state("beating-host") == HostState.ALIVE
    # It beats again (every second with this host's 6 s job staleness), also with no job to run.
    wait_for(lambda: WorkerHost.objects.get(name="beating-host").last_seen > first.last_seen, timeout=30)
    assert "this worker runs on host beating-host" in host.log()

    host.stop()
    stopped = WorkerHost.objects.get(name="beating-host").last_seen
    # Only this host's row (the session's celery_worker, if one runs, beats under this machine's name).
    assert set(WorkerHost.objects.values_list("name", flat=True)) - {settings.PLANQK_HOST_NAME} == {"beating-host"}
    # A stopped worker beats no more: its row is not refreshed (the reaper will see it silent).
    host2 = start_host("other-host")
    other = wait_for(lambda: WorkerHost.objects.filter(name="other-host").first(), timeout=30)
    wait_for(lambda: WorkerHost.objects.get(name="other-host").last_seen > other.last_seen, timeout=30)
    assert WorkerHost.objects.get(name="beating-host").last_seen == stopped
    assert host2.proc.poll() is None
