"""What a host reports of its warm runners (issue 17), and how the platform reads it back.

Warm runners live on one host's disk (:mod:`runtimes.local.warm`): the web process cannot see
them. So each worker's heartbeat (:mod:`hosts.worker`) reads its runtimes' pools and stores
:func:`host_warm_report` on the host's :class:`~hosts.models.WorkerHost` row; the version and
service pages read it through :func:`hosts.selectors.version_warm`, across the live hosts of
this queue family. The report is as fresh as the last beat (every few seconds).

The report, per runtime that has a warm pool (an object with ``config`` and ``state()``, as
:class:`runtimes.local.warm.WarmPool`)::

    {"local": {"enabled": true, "min_runners": 1, "max_runners": 2, "idle_seconds": 600,
               "memory_mb": 1024,
               "shapes": [{"version_id": "...", "ready": 1, "starting": 0, "target": 1,
                           "memory_kb": 23000, "last_call": 1764612345.1}]}}

A runtime without a pool (the Docker runtime until it has one, the external runtime) is absent:
its executions all start cold.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: At most this many pool shapes per runtime are reported (the row is written at every beat).
MAX_SHAPES = 200
_CONFIG_FIELDS = ("min_runners", "max_runners", "idle_seconds", "memory_mb")
_COUNT_FIELDS = ("ready", "starting", "target", "memory_kb")


def as_count(value: Any) -> int:
    """A non-negative int from a stored value; anything else is 0 (the rows are only read)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return max(0, int(value))


def as_time(value: Any) -> float | None:
    """A positive finite timestamp from a stored value, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def pool_report(pool: Any) -> dict[str, Any]:
    """One runtime's part of the report, from its pool's ``config`` and ``state()``."""
    config = pool.config
    shapes = []
    for shape in pool.state()[:MAX_SHAPES]:
        entry: dict[str, Any] = {"version_id": str(shape.get("version_id") or "")}
        entry.update({name: as_count(shape.get(name)) for name in _COUNT_FIELDS})
        entry["last_call"] = as_time(shape.get("last_call"))
        shapes.append(entry)
    report: dict[str, Any] = {"enabled": bool(config.enabled)}
    report.update({name: as_count(getattr(config, name, 0)) for name in _CONFIG_FIELDS})
    report["shapes"] = shapes
    return report


def warm_reader(runtimes: list[str]) -> Callable[[], dict[str, Any]]:
    """A function giving :func:`host_warm_report` for ``runtimes`` (this host's). Everything it
    needs is imported and made here, in the caller's thread, and nothing when it is called: the
    heartbeat calls it from a thread of the worker's main process, which forks the pool's
    children at any time, and a child forked while that thread held an import lock waits for
    that lock for ever (seen: a job hung in its first ``get_runtime`` until its time limit)."""
    import psutil  # noqa: F401 - imported now, not first by runtimes.local.warm inside a beat

    from jobs.runtime_factory import get_runtime

    pools: dict[str, Any] = {}
    for name in runtimes:
        try:
            pool = getattr(get_runtime(name), "warm", None)
        except Exception:
            logger.info("runtime %s: no warm state to report", name, exc_info=True)
            continue
        if pool is not None and hasattr(pool, "state"):
            pools[name] = pool  # else no warm pool on this runtime: its executions start cold

    def read() -> dict[str, Any]:
        report: dict[str, Any] = {}
        for name, pool in pools.items():
            try:
                report[name] = pool_report(pool)
            except Exception:
                # A pool that cannot be read now (an engine away) is left out of this beat; the
                # beat itself must go on.
                logger.info("warm state of runtime %s not read", name, exc_info=True)
        return report

    read()  # the first read in the caller's thread too: any import a pool does lazily happens now
    return read


def host_warm_report(runtimes: list[str]) -> dict[str, Any]:
    """This host's warm runners per runtime (see the module docstring)."""
    return warm_reader(runtimes)()
