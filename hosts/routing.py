"""The one routing rule: which Celery queue a build or an execution goes to, and which queues a
worker consumes. Every enqueue road (a new job, the reaper's hand-over and re-run, a build, a
rebuild, a requeue) asks here; nothing else names a queue.

Queue names are derived from ``settings.CELERY_TASK_DEFAULT_QUEUE`` (``D``), so every test run
(and every test with hosts of its own) has a private family of queues on a shared broker:

- ``D``: tasks any worker may run (the reaper, billing, git fetches, URL-imported services).
- ``D.runtime.<runtime>``: executions of a version the runtime built, and new builds on the
  platform's runtime (``PLANQK_RUNTIME``). A host consumes the queues of ``PLANQK_HOST_RUNTIMES``
  only, so a Docker-only host never takes a local job.
- ``D.pin.<name>``: everything of a service an operator pinned to ``name`` (``Service.queue``,
  staff only: :func:`may_pin_queue`), consumed by hosts listing it in ``PLANQK_WORKER_QUEUES``
  (a GPU, a hardware token's network).
- ``D.host.<host>``: a hand-over to a new worker on the host that runs the execution, the only
  place it can be reattached to (runtime handles are a pid, a folder, a container id), and the
  host's housekeeping (:mod:`hosts.housekeeping`), which cleans what only that host holds.

Stored values are not trusted: a runtime, pin or host name that is not a plain name never becomes
part of a queue name (the task goes where it would go without it).
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

#: What a pinned queue may be called (``Service.queue``, ``PLANQK_WORKER_QUEUES``).
QUEUE_NAME_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z")
#: What a host may be called (``PLANQK_HOST_NAME``); a job's host is read from its stored worker id.
HOST_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
# Runtimes that need nothing of a host (the external runtime forwards to a URL): any worker runs them.
HOST_INDEPENDENT_RUNTIMES = frozenset({"external"})


def default_queue() -> str:
    """The queue every worker consumes (this install's, or this test run's)."""
    return str(settings.CELERY_TASK_DEFAULT_QUEUE)


def platform_runtime() -> str:
    """The runtime new builds use (``PLANQK_RUNTIME``, the same on every host)."""
    return str(settings.PLANQK_RUNTIME or "local")


def _known_runtime(name: str) -> bool:
    from runtimes.base import RUNTIME_CLASSES

    return name in RUNTIME_CLASSES


def runtime_queue(runtime: str) -> str:
    """The queue of executions (and builds) on ``runtime``; the default queue for a runtime any host can run."""
    if runtime in HOST_INDEPENDENT_RUNTIMES:
        return default_queue()
    if not _known_runtime(runtime):
        raise ValueError(f"unknown runtime {runtime!r}")
    return f"{default_queue()}.runtime.{runtime}"


def pinned_queue(name: str) -> str:
    """The queue of a service pinned to ``name``."""
    if not QUEUE_NAME_RE.fullmatch(name):
        raise ValueError(f"not a queue name: {name!r}")
    return f"{default_queue()}.pin.{name}"


def host_queue(host: str) -> str:
    """The queue only the workers of ``host`` consume."""
    if not HOST_NAME_RE.fullmatch(host):
        raise ValueError(f"not a host name: {host!r}")
    return f"{default_queue()}.host.{host}"


def service_pin(service: Any) -> str:
    """The queue name an operator pinned ``service`` to, or "" (also for a stored value that is
    not a queue name: such a pin cannot be any host's, and ignoring it gives the provider nothing
    they would not have unpinned)."""
    pin = str(getattr(service, "queue", "") or "")
    if pin and not QUEUE_NAME_RE.fullmatch(pin):
        logger.warning("service %s has an invalid queue pin %r; ignored", getattr(service, "pk", "?"), pin)
        return ""
    return pin


def queue_for_execution(version: Any) -> str:
    """Where a job of ``version`` runs: the service's pinned queue, else the queue of the runtime
    that built the version. A stored runtime that is not one of ours goes to the default queue,
    where any worker fails the job with the runtime's own clear error."""
    pin = service_pin(version.service)
    if pin:
        return pinned_queue(pin)
    runtime = str(version.runtime or platform_runtime())
    try:
        return runtime_queue(runtime)
    except ValueError:
        logger.warning("version %s names an unknown runtime %r", getattr(version, "pk", "?"), runtime)
        return default_queue()


def queue_for_build(version: Any) -> str:
    """Where ``version`` is built: the service's pinned queue, else the platform runtime's."""
    pin = service_pin(version.service)
    if pin:
        return pinned_queue(pin)
    return runtime_queue(platform_runtime())


def queue_for_handover(version: Any, *, host: str) -> str:
    """Where a hand-over of an execution on ``host`` goes: that host's own queue (a new worker
    there reattaches); without a usable host name, where a new execution of the version would go."""
    try:
        return host_queue(host)
    except ValueError:
        return queue_for_execution(version)


def queue_for_removal(runtime: str) -> str:
    """Where the artefacts of a build on ``runtime`` are removed: a worker that has that runtime."""
    try:
        return runtime_queue(runtime)
    except ValueError:
        return default_queue()


def may_pin_queue(user: Any) -> bool:
    """Who may set ``Service.queue``: staff with the ``services.pin_service_queue`` permission
    (superusers have it), never a provider, who would otherwise steer their code onto a host
    holding a hardware token; staff who may only edit services see the pin read-only."""
    return bool(
        getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
        and user.has_perm("services.change_service")
        and user.has_perm("services.pin_service_queue")
    )


# --- what a worker consumes --------------------------------------------------------------------


def host_runtimes() -> list[str]:
    """The runtimes this host's workers run (``PLANQK_HOST_RUNTIMES``, default ``[PLANQK_RUNTIME]``)."""
    return list(settings.PLANQK_HOST_RUNTIMES)


def worker_pins() -> list[str]:
    """The pinned queues this host's workers also consume (``PLANQK_WORKER_QUEUES``)."""
    return list(settings.PLANQK_WORKER_QUEUES)


def worker_queues(*, host: str, runtimes: list[str] | None = None, pins: list[str] | None = None) -> list[str]:
    """Every queue a worker on ``host`` consumes besides the default one: the queues of its
    runtimes and pins (this host's settings unless given: what another host announced) and its
    host's own."""
    runtimes = host_runtimes() if runtimes is None else runtimes
    pins = worker_pins() if pins is None else pins
    queues: set[str] = set()
    for runtime in runtimes:
        with contextlib.suppress(ValueError):  # an announcement is only read, never trusted
            queues.add(runtime_queue(runtime))
    for pin in pins:
        with contextlib.suppress(ValueError):
            queues.add(pinned_queue(pin))
    queues.discard(default_queue())
    extra = [host_queue(host)] if HOST_NAME_RE.fullmatch(host) else []
    return [*sorted(queues), *extra]


def why_no_host(version: Any, hosts: list[Any]) -> str:
    """Why none of ``hosts`` (live :class:`hosts.models.WorkerHost` rows) would take a job of
    ``version`` ("" when one would): for the job's log while it waits."""
    queue = queue_for_execution(version)
    for host in hosts:
        if queue == default_queue() or queue in worker_queues(
            host=host.name, runtimes=list(host.runtimes or []), pins=list(host.queues or [])
        ):
            return ""
    if not hosts:
        return "no worker host is running"
    pin = service_pin(version.service)
    if pin:
        return f"no worker host consumes the queue {pin}, which an operator pinned this service to"
    return f"no worker host runs runtime {version.runtime or platform_runtime()}"
