"""Per-host housekeeping: what only a host itself can clean, on its own disk and engine.

The reaper runs once per interval on whichever worker took it, so it cannot reach another
host's execution folders, environments or images. Instead it sends :func:`host_housekeeping`
(through :func:`housekeeping_fan_out`) to the own queue (:func:`hosts.routing.host_queue`) of
every ALIVE host, at most one outstanding per host (``WorkerHost.housekeeping_sent_at``, a
conditional update). On that host the task runs the functions that do the work, each in its one
place:

- :func:`jobs.engine.job_reap_orphans`: executions of final jobs and superseded re-runs;
- :func:`jobs.runtime_factory.environments_reap`: local environments no current build uses,
  idle ``PLANQK_ENV_IDLE_DAYS``;
- :func:`jobs.runtime_factory.warm_trim`: warm runners of versions nobody called for a while, or
  over the memory budget, and those that ended;
- :func:`deleted_versions_remove`: what this host holds of deleted versions (a local code folder
  it materialised, the images its Docker engine built or pulled), from :class:`DeletedVersion`,
  which the deletion writes (:func:`deleted_versions_record`).

Every host has a ``WorkerHost`` row as soon as one of its workers runs (:mod:`hosts.worker`), a
single-host install included, so the reaper itself no longer sweeps anything of a host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .models import DeletedVersion, WorkerHost

logger = logging.getLogger(__name__)

#: A housekeeping task not ended after this long counts as lost (its host's workers were busy
#: or it died); its message expires then, so a new one never runs beside it.
HOUSEKEEPING_EXPIRES_SECONDS = 600
#: How long deleted versions are remembered: a host silent for longer keeps their artefacts.
DELETED_VERSIONS_KEPT_DAYS = 30


def deleted_versions_record(*, versions: Iterable[tuple[str, str]], now: datetime | None = None) -> int:
    """Remember deleted versions (``(version id, runtime)`` pairs) for every host's housekeeping;
    call it in the deletion's transaction. Returns how many were recorded."""
    now = now or timezone.now()
    rows = [DeletedVersion(version_id=str(v), runtime=str(r), deleted_at=now) for v, r in versions]
    DeletedVersion.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def housekeeping_fan_out(*, now: datetime | None = None) -> int:
    """Reaper check: send :func:`host_housekeeping` to each ALIVE host with none outstanding;
    returns how many were sent. A silent or lost host gets none (nobody would take it). Deleted
    versions older than ``DELETED_VERSIONS_KEPT_DAYS`` are forgotten here."""
    from .routing import host_queue
    from .selectors import hosts_alive
    from .tasks import host_housekeeping

    now = now or timezone.now()
    DeletedVersion.objects.filter(deleted_at__lt=now - timedelta(days=DELETED_VERSIONS_KEPT_DAYS)).delete()
    void = now - timedelta(seconds=HOUSEKEEPING_EXPIRES_SECONDS)
    sent = 0
    for host in hosts_alive(now=now):
        try:
            queue = host_queue(host.name)
        except ValueError:  # a row no worker of ours wrote: no queue is named after it
            logger.warning("housekeeping: host %r has no queue name", host.name)
            continue
        free = Q(housekeeping_sent_at__isnull=True) | Q(housekeeping_sent_at__lt=void)
        if not WorkerHost.objects.filter(pk=host.pk).filter(free).update(housekeeping_sent_at=now):
            continue  # one is outstanding (or another reaper just sent one)
        host_housekeeping.apply_async(
            kwargs={"host": host.name, "sent_at": now.isoformat()}, queue=queue, expires=HOUSEKEEPING_EXPIRES_SECONDS
        )
        sent += 1
    return sent


def host_housekeeping(*, host: str, sent_at: str = "") -> dict[str, Any]:
    """This host's housekeeping (see the module's docstring); one failing step never stops the
    others. Ends the reaper's claim ``sent_at`` and records what was removed on the host's row."""
    from jobs.engine import job_reap_orphans
    from jobs.runtime_factory import environments_reap, warm_trim

    from .selectors import host_name

    if host != host_name():
        # Only this host's workers consume its queue; a message for another host is not ours.
        logger.warning("housekeeping for host %s reached host %s; skipped", host, host_name())
        return {}
    steps = {
        "orphans": job_reap_orphans,
        "environments": lambda: environments_reap()["removed"],
        "warm_runners": warm_trim,
        "deleted_versions": deleted_versions_remove,
    }
    counts: dict[str, Any] = {}
    for name, step in steps.items():
        try:
            counts[name] = step()
        except Exception as exc:
            logger.exception("housekeeping step %s failed on host %s", name, host)
            counts[name] = f"failed: {str(exc)[:200]}"
    rows = WorkerHost.objects.filter(name=host)
    claim = _parse_time(sent_at)
    done = {"housekeeping_at": timezone.now(), "housekeeping": counts}
    if claim is not None and rows.filter(housekeeping_sent_at=claim).update(housekeeping_sent_at=None, **done):
        return counts
    rows.update(**done)  # a claim that expired meanwhile is the newer task's to end
    return counts


def deleted_versions_remove() -> int:
    """Remove what this host holds of every remembered deleted version, through each runtime's
    ``remove_versions`` (names and paths derived there from the id alone); returns how many
    versions had something here. A runtime this host lacks (no Docker engine) is skipped."""
    from jobs.runtime_factory import get_runtime

    by_runtime: dict[str, list[str]] = {}
    for version_id, runtime in DeletedVersion.objects.values_list("version_id", "runtime"):
        by_runtime.setdefault(runtime, []).append(version_id)
    removed = 0
    for name, version_ids in sorted(by_runtime.items()):
        try:
            remove = getattr(get_runtime(name), "remove_versions", None)
            if remove is None:
                continue  # a runtime that holds nothing on a host (external)
            removed += len(remove(version_ids))
        except Exception as exc:  # an unknown stored runtime, no engine here: nothing of it to remove
            logger.info("housekeeping: runtime %r removed nothing here: %s", name, exc)
    return removed


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
