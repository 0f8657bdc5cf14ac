"""Celery entry points of hosts: thin; the work is in :mod:`hosts.housekeeping`."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import housekeeping


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=360)
def host_housekeeping(*, host: str, sent_at: str = "") -> dict[str, Any]:
    """This host's housekeeping, sent to its own queue by the reaper (:func:`housekeeping.housekeeping_fan_out`)."""
    return housekeeping.host_housekeeping(host=host, sent_at=sent_at)
