"""Reads of worker hosts: is a host alive, silent or lost?

- ALIVE: it beat within ``PLANQK_JOB_HEARTBEAT_STALE_SECONDS`` (the same staleness as a job's
  heartbeat): a stale job on it lost its worker process, not its host.
- SILENT: no beat for longer than that but not yet ``PLANQK_HOST_LOST_SECONDS``: nothing is
  decided yet (a host that is only slow or briefly cut off must not see its jobs run twice).
- LOST: no beat for ``PLANQK_HOST_LOST_SECONDS`` (always longer than a job's staleness).
- UNKNOWN: no row (a worker from before hosts beat, or no host recorded on the job).

And what the live hosts' beats report of a version's warm runners (:func:`version_warm`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

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


# --- warm runners (hosts.warm) -------------------------------------------------------------------


class WarmState(StrEnum):
    """What :func:`version_warm` says of a version, across the live hosts that run its runtime."""

    WARM = "warm"  # a runner is ready on some host: the next execution there skips the start-up
    STARTING = "starting"  # runners are starting, none is ready yet
    COLD = "cold"  # warm execution is on, but nothing of this version is warm now
    OFF = "off"  # every such host runs with PLANQK_WARM=off
    NO_POOL = "no-pool"  # the runtime has no warm runners (yet): every execution starts cold
    NO_HOST = "no-host"  # no live host runs the version's runtime


@dataclass(frozen=True)
class HostWarm:
    """One live host's warm runners of one version (all its pool shapes together)."""

    name: str
    enabled: bool
    ready: int = 0
    starting: int = 0
    memory_kb: int = 0
    last_call: datetime | None = None
    idle_seconds: int = 0
    memory_budget_mb: int = 0

    @property
    def memory_mb(self) -> float:
        return self.memory_kb / 1024

    @property
    def idle_minutes(self) -> int:
        return max(1, round(self.idle_seconds / 60))


@dataclass(frozen=True)
class VersionWarm:
    """A version's warm runners across the live hosts of this queue family, as their last beats
    reported them (a few seconds old at most)."""

    runtime: str
    state: WarmState
    hosts: list[HostWarm] = field(default_factory=list)

    @property
    def ready(self) -> int:
        return sum(host.ready for host in self.hosts)

    @property
    def starting(self) -> int:
        return sum(host.starting for host in self.hosts)

    @property
    def memory_mb(self) -> float:
        return sum(host.memory_kb for host in self.hosts) / 1024

    @property
    def last_call(self) -> datetime | None:
        """The latest call any host counted within its ``idle_seconds`` (None: none so recent)."""
        return max((host.last_call for host in self.hosts if host.last_call), default=None)

    @property
    def idle_minutes(self) -> int:
        """After how many minutes without a call a version goes cold (the shortest of the hosts on)."""
        on = [host.idle_minutes for host in self.hosts if host.enabled]
        return min(on, default=0)

    @property
    def hosts_on(self) -> list[HostWarm]:
        return [host for host in self.hosts if host.enabled]

    @property
    def hosts_off(self) -> list[HostWarm]:
        return [host for host in self.hosts if not host.enabled]


def _host_warm(name: str, pool: dict[str, Any], version_id: str, now: datetime) -> HostWarm:
    """One host's runners of ``version_id`` from its stored report (read, never trusted: a value
    of the wrong type counts as nothing rather than breaking the page). Its last call is kept
    only within the host's ``idle_seconds``: an older one no longer makes anything warm."""
    from .warm import as_count, as_time

    ready = starting = memory_kb = 0
    last: float | None = None
    shapes = pool.get("shapes")
    for shape in shapes if isinstance(shapes, list) else []:
        if not isinstance(shape, dict) or str(shape.get("version_id") or "") != version_id:
            continue
        ready += as_count(shape.get("ready"))
        starting += as_count(shape.get("starting"))
        memory_kb += as_count(shape.get("memory_kb"))
        at = as_time(shape.get("last_call"))
        if at is not None and (last is None or at > last):
            last = at
    idle_seconds = as_count(pool.get("idle_seconds"))
    last_call = None
    if last is not None:
        with contextlib.suppress(OverflowError, OSError, ValueError):
            last_call = datetime.fromtimestamp(last, tz=UTC)
    if last_call is not None and (now - last_call).total_seconds() > idle_seconds:
        last_call = None
    return HostWarm(
        name=name,
        enabled=pool.get("enabled") is True,
        ready=ready,
        starting=starting,
        memory_kb=memory_kb,
        last_call=last_call,
        idle_seconds=idle_seconds,
        memory_budget_mb=as_count(pool.get("memory_mb")),
    )


def version_warm(*, version_id: Any, runtime: str, now: datetime | None = None) -> VersionWarm:
    """Whether version ``version_id`` (built on ``runtime``) is warm, per live host of this queue
    family that runs ``runtime`` (:func:`hosts_alive`), from the reports their heartbeats wrote
    (:mod:`hosts.warm`)."""
    runtime = str(runtime or "")
    key = str(version_id)
    now = now or timezone.now()
    running = [host for host in hosts_alive(now=now) if runtime in (host.runtimes or [])]
    if not running:
        return VersionWarm(runtime=runtime, state=WarmState.NO_HOST)
    found: list[HostWarm] = []
    for host in running:
        report = host.warm if isinstance(host.warm, dict) else {}
        pool = report.get(runtime)
        if isinstance(pool, dict):
            found.append(_host_warm(host.name, pool, key, now))
    if not found:
        state = WarmState.NO_POOL
    elif not any(host.enabled for host in found):
        state = WarmState.OFF
    elif any(host.ready for host in found if host.enabled):
        state = WarmState.WARM
    elif any(host.starting for host in found if host.enabled):
        state = WarmState.STARTING
    else:
        state = WarmState.COLD
    return VersionWarm(runtime=runtime, state=state, hosts=found)
