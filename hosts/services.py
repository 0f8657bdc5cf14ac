"""Writes of worker hosts: the heartbeat."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .models import WorkerHost


def host_beat(*, name: str, runtimes: list[str], started_at: datetime | None = None) -> WorkerHost:
    """Record that ``name`` is alive now (one UPDATE once the row exists)."""
    now = timezone.now()
    if WorkerHost.objects.filter(name=name).update(last_seen=now, runtimes=runtimes):
        if started_at is not None:
            WorkerHost.objects.filter(name=name, started_at__lt=started_at).update(started_at=started_at)
        return WorkerHost.objects.get(name=name)
    host, _ = WorkerHost.objects.update_or_create(
        name=name, defaults={"last_seen": now, "runtimes": runtimes, "started_at": started_at or now}
    )
    return host
