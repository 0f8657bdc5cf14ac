"""Worker "hosts" on this machine: real Celery workers, each with its own PLANQK_HOST_NAME and
data directory, against this run's database and broker (one PostgreSQL and Redis in CI)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, WorkerProcess, _child_env
from tests.jobs.conftest import make_version, wait_for  # noqa: F401 - make_version: the fixture, for tests/hosts


@dataclass
class HostProcess(WorkerProcess):
    """One host's worker; :meth:`crash` takes the whole host down."""

    name: str = ""
    data_dir: Path | None = None
    queue: str = ""

    def family(self) -> list:
        """The worker and every process it started (executions start their own session)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def pause(self) -> None:
        """SIGSTOP the whole host: it is cut off, not gone (and may come back)."""
        for process in self.family():
            with contextlib.suppress(Exception):
                process.suspend()

    def resume(self) -> None:
        for process in self.family():
            with contextlib.suppress(Exception):
                process.resume()

    def crash(self) -> None:
        """SIGKILL the worker, its pool and every process they started, the executions too:
        a supervisor starts its own session, so the process group alone would leave it running."""
        import psutil

        if self.proc.poll() is not None:
            return
        family = self.family()
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        psutil.wait_procs(family, timeout=10)


@pytest.fixture
def start_host(django_db_blocker, tmp_path, settings) -> Iterator[Callable[..., HostProcess]]:
    """``start_host(name, queue=None, env=None)``: a worker on host ``name`` with a data directory
    of its own, consuming ``queue`` (default: this test's queue D) and, as every worker does
    (hosts.routing.worker_queues), the queues routing sends this host's work to: ``D.runtime.<r>``
    for its runtimes (``PLANQK_HOST_RUNTIMES`` in ``env``; default its ``PLANQK_RUNTIME``),
    ``D.pin.<q>`` for ``PLANQK_WORKER_QUEUES`` and ``D.host.<name>``; it enqueues to this test's
    queues. ``env`` adds or overrides the worker's environment (a runtime, an engine, a registry).

    What must be the same on every host (docs/MULTIHOST.md) is this run's: the signing and field
    encryption keys, the database, the broker and the stored files (``DJANGO_MEDIA_ROOT``).
    """
    from planqk_portal.celery import app

    # A queue family of this test's own: the hosts consume it and the reaper (in this process)
    # routes re-runs into it, so no other worker of the run (the session's celery_worker, host
    # "vm", which consumes the run's family) can take a job meant for host B.
    own_queue = f"hosts-{uuid.uuid4().hex[:8]}"
    # Through pytest-django's settings fixture, which undoes its overrides last-in first-out: set
    # directly, a test that also overrode a setting after this fixture started restored the run's
    # queue into its own override, and every later test of the run sent its jobs to this queue.
    saved = app.conf.task_default_queue
    settings.CELERY_TASK_DEFAULT_QUEUE = app.conf.task_default_queue = own_queue
    started: list[HostProcess] = []

    def start(name: str, queue: str | None = None, env: dict[str, str] | None = None) -> HostProcess:
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            # The filesystem broker lives in each data directory: hosts of their own cannot share it.
            pytest.skip("several hosts need one broker: run with CELERY_BROKER_URL=redis://... (as .ci/run does)")
        data_dir = tmp_path / f"host-{name}"
        data_dir.mkdir()
        queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
        with django_db_blocker.unblock():
            env = _child_env(
                {
                    "DJANGO_DEBUG": "true",
                    "PLANQK_HOST_NAME": name,
                    "PLANQK_DATA_DIR": str(data_dir),
                    "DJANGO_SECRET_KEY": settings.SECRET_KEY,
                    "PLANQK_FIELD_ENCRYPTION_KEY": settings.PLANQK_FIELD_ENCRYPTION_KEY or "",
                    "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
                    # Checkpoints (and with them the log) every second: the test sees the start
                    # line stored before it kills a host.
                    "PLANQK_JOB_HEARTBEAT_STALE_SECONDS": "6",
                    **(env or {}),
                }
            )
        log_dir = ROOT / "var" / "test-workers"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"host-{name}-{uuid.uuid4().hex[:6]}.log"
        cmd = [
            sys.executable, "-m", "celery", "-A", "planqk_portal", "worker", "-l", "info", "-Q", queue,
            "--concurrency", "1", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        host = HostProcess(proc=proc, log_path=log_path, name=name, data_dir=data_dir, queue=queue)
        started.append(host)
        wait_for(lambda: " ready." in host.log() or proc.poll() is not None, timeout=90)
        if proc.poll() is not None:
            raise RuntimeError(f"the worker of host {name} exited early:\n{host.log()}")
        return host

    try:
        yield start
    finally:
        for host in started:
            host.stop()
        app.conf.task_default_queue = saved
