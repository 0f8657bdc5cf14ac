"""Celery entry points for services: thin, by id; the logic is in :mod:`services.builds`."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from .builds import service_builds_remove, service_version_build

# The runtime enforces PLANQK_BUILD_TIMEOUT itself; these limits catch a runtime that hangs.
_BUILD_SOFT_LIMIT = int(settings.PLANQK_BUILD_TIMEOUT) + 30
_BUILD_HARD_LIMIT = _BUILD_SOFT_LIMIT + 60


@shared_task(bind=True, acks_late=True, soft_time_limit=_BUILD_SOFT_LIMIT, time_limit=_BUILD_HARD_LIMIT)
def build_service_version(self: Any, version_id: str) -> str | None:
    """Build one service version (a no-op unless it is PENDING); returns its final status."""
    version = service_version_build(version_id=version_id)
    return version.status if version else None


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def remove_service_builds(builds: list[dict[str, Any]]) -> int:
    """Remove the runtime artefacts of deleted versions (``[{"runtime", "handle"}]``)."""
    return service_builds_remove(builds=builds)
