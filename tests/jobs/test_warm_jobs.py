"""Jobs on warm runners end to end (issue 17, items 1, 2 and 5): a real Celery worker with
``PLANQK_WARM=on`` runs a version's second job on a runner it started after the first, and that
job succeeds with its own input's result; two callers each get their own; with ``PLANQK_WARM=off``
nothing is warm and no runner process exists; the host's housekeeping trims a version not called
for ``PLANQK_WARM_IDLE_SECONDS``; deleting the service stops its runners.

The worker consumes a queue family of the test's own, so the session's worker (warm off) never takes
these jobs, and shares this run's data folder (the builds, and the filesystem broker of a plain
``make test``). What is warm is read as the platform reads it: from the host's heartbeat
(:func:`hosts.selectors.version_warm`), and checked on the host's processes and pool folders.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hosts.housekeeping import housekeeping_fan_out
from hosts.models import WorkerHost
from hosts.selectors import WarmState, version_warm
from jobs.admission import execution_admit
from jobs.models import JobStatus
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import WorkerProcess, make_user, start_worker
from tests.jobs.conftest import log_text, wait_final, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WARM_LINE = "(warm runner)"


class WarmHost:
    """A worker of host ``name`` on this test's own queue family."""

    def __init__(self, worker: WorkerProcess, name: str, data_dir: Path) -> None:
        self.worker, self.name, self.data_dir = worker, name, data_dir

    def runners(self) -> dict[str, list[int]]:
        """Warm runners alive below the worker: each runner's name (its processes' marker, which
        starts ``warm-``; an execution's is ``job-``...) and the pids of its live processes
        (supervisor, sandbox, interpreter)."""
        import psutil

        try:
            family = psutil.Process(self.worker.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return {}
        found: dict[str, list[int]] = {}
        for process in family:
            try:
                with open(f"/proc/{process.pid}/environ", "rb") as fh:
                    variables = fh.read().split(b"\0")
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
            except (OSError, psutil.Error):
                continue
            for variable in variables:
                if variable.startswith(b"PLANQK_EXECUTION_ID=warm-"):
                    found.setdefault(variable.split(b"=", 1)[1].decode(), []).append(process.pid)
        return found

    def shapes_of(self, version) -> list[Path]:
        """The pool folders of ``version`` on this host (runtimes.local.warm)."""
        folders = []
        warm_dir = self.data_dir / "warm"
        for folder in warm_dir.iterdir() if warm_dir.is_dir() else []:
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("build", {}).get("version_id") == str(version.pk):
                folders.append(folder)
        return folders

    def warm(self, version):
        """What this host's last beat says of ``version``."""
        state = version_warm(version_id=version.pk, runtime="local")
        return next((host for host in state.hosts if host.name == self.name), None)

    def wait_ready(self, version, at_least: int = 1, timeout: float = 60):
        """Wait for a beat, read after now, that reports ``at_least`` runners of ``version`` ready
        (a beat from before the last job took its runner would still count that one)."""
        from django.utils import timezone

        since = timezone.now() + timedelta(seconds=0.5)

        def fresh():
            if WorkerHost.objects.filter(name=self.name, last_seen__gt=since).exists():
                warm = self.warm(version)
                return warm is not None and warm.ready >= at_least and warm
            return None

        return wait_for(fresh, timeout=timeout)


def _versions_of(data_dir: Path, runners: set[str]) -> set[str]:
    """The versions whose pool shapes hold one of ``runners``."""
    found = set()
    warm_dir = data_dir / "warm"
    for folder in warm_dir.iterdir() if warm_dir.is_dir() else []:
        try:
            names = set(os.listdir(folder / "runners"))
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        if names & runners:
            found.add(str(meta.get("build", {}).get("version_id", "")))
    return found


def _alive(runners: set[str]) -> bool:
    """Whether a process of one of ``runners`` (by its marker) is still alive on this machine."""
    needles = {f"PLANQK_EXECUTION_ID={name}".encode() for name in runners}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if needles & set(fh.read().split(b"\0")):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    if stat[stat.rindex(")") + 2] not in "ZX":
                        return True
        except OSError:
            continue
    return False


def _local_runtime():
    from jobs.runtime_factory import get_runtime

    return get_runtime("local")


@pytest.fixture
def warm_host(settings, django_db_blocker) -> Iterator[Callable[..., WarmHost]]:
    """``warm_host(env)``: a worker (concurrency 2) of a host of its own on this test's queue family."""
    from django.conf import settings as conf

    from planqk_portal.celery import app

    family = f"warm-{uuid.uuid4().hex[:8]}"
    saved = app.conf.task_default_queue
    settings.CELERY_TASK_DEFAULT_QUEUE = app.conf.task_default_queue = family
    started: list[WarmHost] = []

    def start(env: dict[str, str]) -> WarmHost:
        name = f"warm-{uuid.uuid4().hex[:6]}"
        with django_db_blocker.unblock():
            worker = start_worker(
                concurrency=2,
                extra_env={
                    "PLANQK_HOST_NAME": name,
                    # Beats every second: the test reads the host's warm report soon after a change.
                    "PLANQK_JOB_HEARTBEAT_STALE_SECONDS": "6",
                    **env,
                },
            )
        host = WarmHost(worker, name, Path(conf.PLANQK_DATA_DIR))
        started.append(host)
        wait_for(lambda: WorkerHost.objects.filter(name=name).exists(), timeout=30)
        return host

    try:
        yield start
    finally:
        for host in started:
            # A warm runner outlives its worker (a session of its own; the next worker of the host
            # takes it): this test's are stopped, by the versions they are of, not left for 600 s.
            # One still starting is stopped once it is ready (or has ended).
            runners = set(host.runners())
            versions = _versions_of(host.data_dir, runners)
            host.worker.stop()
            pool = _local_runtime().warm
            deadline = time.monotonic() + 30
            while versions and _alive(runners) and time.monotonic() < deadline:
                pool.stop_versions(versions)
                time.sleep(0.2)
        app.conf.task_default_queue = saved


def _run(version, owner, values: list[float]):
    return execution_admit(service_version=version, owner=owner, data={"values": values}, params={})


def _succeeded(job, expected: float):
    from jobs.models import Job

    try:
        job = wait_final(job)
    except AssertionError:
        job = Job.objects.get(pk=job.pk)
        raise AssertionError(f"job {job.pk} is {job.status} after 90 s:\n{log_text(job)}") from None
    assert job.status == JobStatus.SUCCEEDED, (job.status, job.error_code, job.error_detail, log_text(job))
    assert job.result == {"sum": expected}
    return job


def test_the_second_job_takes_a_warm_runner_and_two_callers_each_get_their_own_result(warm_host):
    host = warm_host({"PLANQK_WARM": "on", "PLANQK_WARM_MIN_RUNNERS": "1", "PLANQK_WARM_MAX_RUNNERS": "2"})
    provider, caller = make_user(), make_user()
    target = make_service(provider, name=f"sum-{uuid.uuid4().hex[:6]}")
    subscribe(make_app(caller), target)
    version = target.version

    # Not called yet: cold on this host, said by its heartbeat.
    assert wait_for(lambda: host.warm(version), timeout=30).enabled
    first = _succeeded(_run(version, provider, [1, 2]), 3)
    assert f"started on host {host.name}\n" in log_text(first)
    assert WARM_LINE not in log_text(first)  # the first call of a version starts cold

    # Its call started a runner in the background; the host reports it ready, with its memory.
    ready = host.wait_ready(version)
    assert ready.memory_kb > 0
    assert version_warm(version_id=version.pk, runtime="local").state == WarmState.WARM
    second = _succeeded(_run(version, provider, [10, 20]), 30)
    assert f"started on host {host.name} {WARM_LINE}" in log_text(second)

    # Two callers at once (the provider itself, a subscriber's application): each its own result.
    host.wait_ready(version)
    mine = _run(version, provider, [100, 1])
    theirs = _run(version, caller, [7, 7, 7])
    assert theirs.subscription is not None
    mine, theirs = _succeeded(mine, 101), _succeeded(theirs, 21)
    assert WARM_LINE in log_text(mine) + log_text(theirs)
    assert mine.owner_id == provider.pk
    assert theirs.owner_id == caller.pk

    # Never more runners than PLANQK_WARM_MAX_RUNNERS for the version (they served once and left).
    assert len(host.runners()) <= 2


def test_with_warm_off_no_job_is_warm_and_no_runner_process_exists(warm_host, user, make_version):
    host = warm_host({"PLANQK_WARM": "off"})
    version = make_version(user, "sum")
    for values, expected in (([1, 2], 3), ([3, 4], 7), ([5, 6], 11)):
        job = _succeeded(_run(version, user, values), expected)
        assert f"started on host {host.name}\n" in log_text(job)
        assert WARM_LINE not in log_text(job)
    time.sleep(1)  # a refill would have started by now
    assert host.runners() == {}
    assert not any(
        (folder / "runners").is_dir() and os.listdir(folder / "runners") for folder in host.shapes_of(version)
    )
    report = wait_for(lambda: host.warm(version), timeout=30)
    assert report.enabled is False
    assert version_warm(version_id=version.pk, runtime="local").state == WarmState.OFF


def _age_calls(folder: Path, seconds: float) -> None:
    """Make every recorded call of a pool shape ``seconds`` old: "not called for idle seconds"
    without waiting that long (the runner's own idle stop would then race the housekeeping)."""
    old = time.time() - seconds
    (folder / "calls").write_text(f"{old:.3f}\n")


def test_housekeeping_trims_a_version_not_called_for_the_idle_time(warm_host, user, make_version):
    host = warm_host({"PLANQK_WARM": "on", "PLANQK_WARM_IDLE_SECONDS": "600"})
    idle, busy = make_version(user, "sum"), make_version(user, "sum")
    for version in (idle, busy):
        _succeeded(_run(version, user, [1, 1]), 2)
        host.wait_ready(version)
    (shape,) = host.shapes_of(idle)
    runners_before = set(host.runners())
    assert len(runners_before) >= 2
    _age_calls(shape, 601)

    # The reaper's fan-out sends the housekeeping to this host's own queue; the worker runs it.
    before = WorkerHost.objects.get(name=host.name).housekeeping_at
    assert housekeeping_fan_out() == 1
    row = wait_for(
        lambda: (h := WorkerHost.objects.get(name=host.name)).housekeeping_at != before and h.housekeeping_at and h,
        timeout=60,
    )
    trimmed = row.housekeeping["warm_runners"]
    assert trimmed["stopped"] >= 1, row.housekeeping
    assert host.shapes_of(idle) == []  # the idle version's pool is gone, folder and all
    assert host.shapes_of(busy)  # the one called recently keeps its runner
    wait_for(lambda: host.warm(idle) is None or host.warm(idle).ready == 0, timeout=30)
    assert host.warm(busy).ready >= 1
    wait_for(lambda: len(set(host.runners()) & runners_before) < len(runners_before), timeout=30)
    # Cold again, and a job of it still runs (cold) and succeeds.
    job = _succeeded(_run(idle, user, [2, 2]), 4)
    assert WARM_LINE not in log_text(job)


def test_deleting_the_service_stops_its_runners(warm_host):
    from services.services import service_delete

    host = warm_host({"PLANQK_WARM": "on"})
    provider = make_user()
    target = make_service(provider, name=f"sum-{uuid.uuid4().hex[:6]}")
    _succeeded(_run(target.version, provider, [1, 2]), 3)
    host.wait_ready(target.version)
    assert host.runners()

    service_delete(service=target.service)
    # The removal of its builds runs on a worker of the local runtime (this host's) and stops its runners.
    wait_for(lambda: host.runners() == {}, timeout=60)
    wait_for(lambda: not any(os.listdir(f / "ready") for f in host.shapes_of(target.version) if (f / "ready").is_dir()))
