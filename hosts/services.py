"""Writes of worker hosts: the heartbeat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from .models import WorkerHost


def host_beat(
    *,
    name: str,
    runtimes: list[str],
    queues: list[str] | None = None,
    capacity: int = 0,
    started_at: datetime | None = None,
    family: str | None = None,
    warm: dict[str, Any] | None = None,
) -> WorkerHost:
    """Record that ``name`` is alive now and what it runs (one UPDATE once the row exists):
    ``runtimes`` whose executions it takes, the pinned ``queues`` it consumes, and ``capacity``,
    how many executions its worker runs at once; ``family``, the queue family it consumes
    (default: this process's, ``PLANQK_QUEUE``); ``warm``, its warm runners
    (:func:`hosts.warm.host_warm_report`; None leaves what the row has)."""
    now = timezone.now()
    from .routing import default_queue

    announced = {
        "runtimes": runtimes,
        "queues": queues or [],
        "capacity": max(0, int(capacity)),
        "queue_family": default_queue() if family is None else family,
    }
    if warm is not None:
        announced["warm"] = warm
    if WorkerHost.objects.filter(name=name).update(last_seen=now, **announced):
        if started_at is not None:
            WorkerHost.objects.filter(name=name, started_at__lt=started_at).update(started_at=started_at)
        return WorkerHost.objects.get(name=name)
    host, _ = WorkerHost.objects.update_or_create(
        name=name, defaults={"last_seen": now, "started_at": started_at or now, **announced}
    )
    return host
