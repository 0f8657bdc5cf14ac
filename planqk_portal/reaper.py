"""Registry of periodic checks that finish what dead workers left behind.

Apps register their checks in ``AppConfig.ready()``; the beat schedule runs
``planqk_portal.tasks.reap`` which calls each of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

ReaperCheck = Callable[[], object]
_checks: dict[str, ReaperCheck] = {}


def register(func: ReaperCheck) -> ReaperCheck:
    """Register a reaper check (usable as a decorator)."""
    _checks[f"{func.__module__}.{func.__qualname__}"] = func
    return func


def registered() -> dict[str, ReaperCheck]:
    """The registered checks by name."""
    return dict(_checks)


def run_all() -> dict[str, str]:
    """Run every check; one failing check never stops the others."""
    outcome: dict[str, str] = {}
    for name, check in _checks.items():
        try:
            result = check()
            outcome[name] = f"ok {result!r}" if result is not None else "ok"
        except Exception as exc:  # a broken check must not starve the other ones
            logger.exception("reaper check %s failed", name)
            outcome[name] = f"failed: {exc}"
    return outcome
