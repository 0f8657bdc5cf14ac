"""The job object: status names, final states and the contract's timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import codes
from .errors import ServiceAPIError

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
UNKNOWN = "UNKNOWN"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, UNKNOWN)
#: A job in one of these never changes again; its result can be read.
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED, UNKNOWN})

#: ``YYYY-MM-DD HH:MM:SS``, always UTC.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp(value: datetime | None) -> str | None:
    """The contract's ``YYYY-MM-DD HH:MM:SS`` in UTC; None stays None.

    An aware datetime is converted to UTC; a naive one is taken to be UTC already.
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(TIMESTAMP_FORMAT)


def job_object(
    *, id: Any, status: str, created_at: datetime | None, started_at: datetime | None, ended_at: datetime | None
) -> dict[str, Any]:
    """``{"id", "status", "createdAt", "startedAt", "endedAt"}``, what every job call answers."""
    return {
        "id": str(id),
        "status": str(status),
        "createdAt": timestamp(created_at),
        "startedAt": timestamp(started_at),
        "endedAt": timestamp(ended_at),
    }


def not_finished(status: str) -> ServiceAPIError:
    """The 409 of ``GET /{id}/result`` while the execution is ``status`` (not final)."""
    return ServiceAPIError(
        codes.EXECUTION_NOT_FINISHED,
        f"The execution is {status}; its result is available once it has finished.",
        409,
        extra={"status": str(status)},
    )
