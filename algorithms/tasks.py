"""Celery entry points for algorithms: thin, by id; the logic is in :mod:`algorithms.services`."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import services


@shared_task(bind=True, acks_late=True, soft_time_limit=300, time_limit=360)
def fetch_implementation_git(self: Any, file_id: str) -> str | None:
    """Fetch one git import (a no-op unless it is PENDING); returns its final status."""
    row = services.implementation_git_fetch(file_id=file_id)
    return row.status if row else None
