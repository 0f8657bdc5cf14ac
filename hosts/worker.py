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
import os
import threading
from collections.abc import Callable
from typing import Any

from celery import bootsteps

logger = logging.getLogger(__name__)

#: How long a fork of the pool waits for a beat in progress before it goes ahead anyway.
FORK_WAIT_SECONDS = 5.0


class _ForkGuard:
    """Keeps the pool's forks out of a beat: a beat imports, queries and reads the warm pools'
    folders from its thread, and a child forked in the middle inherits whatever lock the thread
    held at that moment (an import lock: the child hangs at its first import of that module;
    the database driver's, logging's...). ``os.register_at_fork`` takes the guard before every
    fork of this process and gives it back after; the thread holds it for each beat. A child
    starts with a fresh one (it has no heartbeat thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held = False

    def before_fork(self) -> None:
        # A beat takes milliseconds; one stuck on a database that does not answer must not stop
        # the pool from replacing its children for ever.
        self.held = self.lock.acquire(timeout=FORK_WAIT_SECONDS)

    def after_fork_in_parent(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()
        self.held = False


FORK_GUARD = _ForkGuard()
os.register_at_fork(
    before=FORK_GUARD.before_fork,
    after_in_parent=FORK_GUARD.after_fork_in_parent,
    after_in_child=FORK_GUARD.after_fork_in_child,
)


class HostHeartbeat(bootsteps.StartStopStep):
    """Beat at start, then every :func:`hosts.selectors.host_beat_every_seconds`."""

    label = "Host heartbeat"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The worker's pool size (-c): the host's announced capacity.
        self._capacity = int(getattr(parent, "concurrency", 0) or 0)

    def start(self, parent: Any) -> None:
        from django.utils import timezone

        from .selectors import host_name

        self._stop.clear()
        started_at = timezone.now()
        logger.info("host heartbeat: this worker runs on host %s", host_name())
        # Everything the thread uses is imported here, in the main thread: it forks the pool's
        # children, and one forked while the heartbeat thread held an import lock would hang at
        # its first import of that module (hosts.warm.warm_reader).
        from django.db import connections

        from . import services  # noqa: F401 - for the thread
        from .routing import host_runtimes
        from .warm import warm_reader

        # Loads the database backend (its driver) here, connecting nothing.
        connections["default"]
        read_warm = warm_reader(host_runtimes())
        self._thread = threading.Thread(
            target=self._run, args=(started_at, read_warm), name="planqk-host-heartbeat", daemon=True
        )
        self._thread.start()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self, started_at: Any, read_warm: Callable[[], dict[str, Any]]) -> None:
        from django.db import connection

        from .routing import host_runtimes, worker_pins
        from .selectors import host_beat_every_seconds, host_name
        from .services import host_beat

        name, runtimes, queues = host_name(), host_runtimes(), worker_pins()
        # The host's warm runners go with every beat: only this host can see its pools' folders.
        try:
            while True:
                try:
                    with FORK_GUARD.lock:
                        host_beat(
                            name=name,
                            runtimes=runtimes,
                            queues=queues,
                            capacity=self._capacity,
                            started_at=started_at,
                            warm=read_warm(),
                        )
                except Exception:  # the database is away: beat again later on a fresh connection
                    logger.warning("host heartbeat of %s failed", name, exc_info=True)
                    connection.close()
                if self._stop.wait(host_beat_every_seconds()):
                    return
        finally:
            connection.close()


def consume_routed_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    """``celeryd_after_setup``: besides the default queue (or the ``-Q`` ones), consume the queues
    :func:`hosts.routing.worker_queues` names for this host (its runtimes', its pinned ones and
    its own), the way Celery's documentation adds a queue per worker."""
    from .routing import worker_queues
    from .selectors import host_name

    queues = worker_queues(host=host_name())
    for queue in queues:
        instance.app.amqp.queues.select_add(queue)
    logger.info("worker %s also consumes %s", sender, ", ".join(queues))
