"""The host heartbeat inside every Celery worker: a worker bootstep (Celery's documented way to
add a service to the worker's lifecycle) that keeps this host's :class:`~hosts.models.WorkerHost`
row fresh from a thread of the worker's main process.

A thread of its own, not the worker's timer: the timer runs on the worker's event loop, and a
database that answers slowly must not hold up the consumer. The main process beats, not the pool
children, so the beat says "this host's worker is there", while each job's own heartbeat says
"this execution is followed"; the reaper needs both apart (:func:`jobs.engine.job_settle_stale`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)


class HostHeartbeat(bootsteps.StartStopStep):
    """Beat at start, then every :func:`hosts.selectors.host_beat_every_seconds`."""

    label = "Host heartbeat"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        from django.utils import timezone

        from .selectors import host_name

        self._stop.clear()
        started_at = timezone.now()
        logger.info("host heartbeat: this worker runs on host %s", host_name())
        self._thread = threading.Thread(target=self._run, args=(started_at,), name="planqk-host-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self, started_at: Any) -> None:
        from django.conf import settings
        from django.db import connection

        from .selectors import host_beat_every_seconds, host_name
        from .services import host_beat

        name, runtimes = host_name(), [str(settings.PLANQK_RUNTIME or "local")]
        try:
            while True:
                try:
                    host_beat(name=name, runtimes=runtimes, started_at=started_at)
                except Exception:  # the database is away: beat again later on a fresh connection
                    logger.warning("host heartbeat of %s failed", name, exc_info=True)
                    connection.close()
                if self._stop.wait(host_beat_every_seconds()):
                    return
        finally:
            connection.close()
