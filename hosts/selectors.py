"""Reads of worker hosts: is a host alive, silent or lost?

- ALIVE: it beat within ``PLANQK_JOB_HEARTBEAT_STALE_SECONDS`` (the same staleness as a job's
  heartbeat): a stale job on it lost its worker process, not its host.
- SILENT: no beat for longer than that but not yet ``PLANQK_HOST_LOST_SECONDS``: nothing is
  decided yet (a host that is only slow or briefly cut off must not see its jobs run twice).
- LOST: no beat for ``PLANQK_HOST_LOST_SECONDS`` (always longer than a job's staleness).
- UNKNOWN: no row (a worker from before hosts beat, or no host recorded on the job).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from .models import WorkerHost


class HostState(StrEnum):
    ALIVE = "alive"
    SILENT = "silent"
    LOST = "lost"
    UNKNOWN = "unknown"


def host_name() -> str:
    """This process's host name (``PLANQK_HOST_NAME``)."""
    return str(settings.PLANQK_HOST_NAME)


def host_lost_seconds() -> int:
    return int(settings.PLANQK_HOST_LOST_SECONDS)


def host_beat_every_seconds() -> float:
    """How often workers beat: several beats fit into a job's staleness."""
    return min(5.0, int(settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS) / 6)


def host_state(name: str, *, now: datetime | None = None) -> HostState:
    """What the heartbeat of host ``name`` says (see the module's docstring)."""
    if not name:
        return HostState.UNKNOWN
    last_seen = WorkerHost.objects.filter(name=name).values_list("last_seen", flat=True).first()
    if last_seen is None:
        return HostState.UNKNOWN
    silent_for = ((now or timezone.now()) - last_seen).total_seconds()
    if silent_for > host_lost_seconds():
        return HostState.LOST
    if silent_for > int(settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS):
        return HostState.SILENT
    return HostState.ALIVE


def hosts_alive(*, now: datetime | None = None) -> list[WorkerHost]:
    """Hosts of this queue family (``PLANQK_QUEUE``; a row from before families were recorded
    counts too) that beat within a job's staleness."""
    from django.db.models import Q

    from .routing import default_queue

    since = (now or timezone.now()) - timedelta(seconds=int(settings.PLANQK_JOB_HEARTBEAT_STALE_SECONDS))
    family = Q(queue_family=default_queue()) | Q(queue_family="")
    return list(WorkerHost.objects.filter(family, last_seen__gte=since))
