"""Writes for jobs: submit, cancel, and what happens at a final state.

Jobs are created only by :func:`jobs.admission.execution_admit`; ``job_cancel`` is shared by
the gateway, the REST API and the Jobs pages (signatures in docs/DEVELOPING.md). State changes
are the transitions of ``Job.objects`` (:class:`jobs.models.JobQuerySet`); the execution itself
lives in :mod:`jobs.engine`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from planqk_portal.errors import ApplicationError

from .models import JOB_FINAL_STATES, Job, JobStatus

logger = logging.getLogger(__name__)

#: Deeper JSON than this is refused: Python's json module recurses once per level and fails
#: near 1000, which would otherwise surface as a RecursionError in the worker or the runner.
INPUT_MAX_DEPTH = 100


def input_max_bytes() -> int:
    return int(settings.PLANQK_INPUT_MAX_BYTES)


#: A request body carries data and params of at most input_max_bytes() each, plus the rest of it.
BODY_OVERHEAD_BYTES = 64 * 1024


def body_max_bytes() -> int:
    """The largest request body worth reading for a job's input; anything larger is a 413."""
    return 2 * input_max_bytes() + BODY_OVERHEAD_BYTES


def dataref_max_bytes() -> int:
    """Largest data pool file a job reads as input: data pools are the way to pass more than 1 MB."""
    return int(settings.PLANQK_DATAREF_MAX_BYTES)


def json_problem(value: Any, *, max_depth: int = INPUT_MAX_DEPTH) -> tuple[str, str] | None:
    """Why a JSON value cannot be stored, as ``(code, reason)``, or None; never recurses.

    Too deep (``input:too-deep``), or text PostgreSQL's jsonb refuses: a NUL character or an
    unpaired surrogate (``input:invalid-characters``).
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return "input:too-deep", f"is nested more than {max_depth} levels deep"
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "input:invalid-characters", "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "input:invalid-characters", "contains an unpaired surrogate (\\ud800-\\udfff)"
    return None


def input_check(value: Any, *, name: str, max_bytes: int | None = None) -> Any:
    """Check one input given by value: a JSON object (or nothing), not too deep, not too large.

    Raises ``ApplicationError``: 400 ``input:too-deep``, ``input:invalid-characters``,
    ``input:not-an-object``, ``input:not-json`` and 413 ``input:too-large``.
    """
    if value is None:
        return None
    problem = json_problem(value)
    if problem is not None:
        raise ApplicationError(f"{name} {problem[1]}.", code=problem[0], status=400)
    if not isinstance(value, dict):
        raise ApplicationError(
            f"{name} must be a JSON object, e.g. {{}}, not {type(value).__name__}.",
            code="input:not-an-object",
            status=400,
        )
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"{name} is not valid JSON: {exc}", code="input:not-json", status=400) from exc
    limit = max_bytes or input_max_bytes()
    if size > limit:
        raise ApplicationError(
            f"{name} is {size} bytes; at most {limit} bytes may be passed by value. "
            "Put larger input in a data pool and pass a reference instead.",
            code="input:too-large",
            status=413,
        )
    return value


def job_enqueue(*, job_id: Any) -> None:
    """Enqueue the execution of a job once the current transaction commits."""
    from .tasks import execute_job

    job_key = str(job_id)
    transaction.on_commit(lambda: execute_job.delay(job_key))


def job_cancel(*, job: Job) -> Job:
    """Cancel a job: a PENDING one never starts; a RUNNING one is stopped within seconds.

    A job that has already ended is returned as it is.
    """
    # RUNNING: the worker following the execution sees the flag at its next poll and stops it.
    Job.objects.request_cancel(job.pk)
    job.refresh_from_db()
    return job


def job_enqueue_again(*, job: Job) -> bool:
    """Enqueue a PENDING job whose task seems lost, once; the claim keeps it from running twice."""
    updated = Job.objects.filter(pk=job.pk, status=JobStatus.PENDING, enqueue_count__lt=2).update(
        enqueue_count=F("enqueue_count") + 1
    )
    if updated:
        job_enqueue(job_id=job.pk)
    return bool(updated)


def job_record_usage(*, job: Job) -> None:
    """Meter a job with a subscription once it is final (idempotent: one record per job).

    Called by every transition into a final state (``Job.objects.finish``). Per-execution plans
    charge what :attr:`Job.billable` says: an execution that started, also when it failed in the
    service's code, timed out or was cancelled later; one that never started (cancelled while
    pending, unreadable input) or that the platform failed costs nothing, but is still recorded
    with price 0 so that usage pages show it.
    """
    if not job.subscription_id or job.status not in JOB_FINAL_STATES:
        return
    from payments.models import UsageRecord

    subscription = job.subscription
    price = subscription.price_cents if subscription.plan_kind == "PER_EXECUTION" and job.billable else 0
    duration = job.duration_seconds or 0.0
    try:
        with transaction.atomic():
            UsageRecord.objects.get_or_create(
                job=job,
                defaults={
                    "subscription": subscription,
                    "status": job.status,
                    "duration_ms": round(duration * 1000),
                    "price_cents": price,
                },
            )
    except IntegrityError:
        pass  # recorded by a concurrent finisher


def job_save_result(*, job: Job) -> Any:
    """Write a succeeded job's result to a data pool (a new one when none was chosen)."""
    from datapools.services import datafile_create_from_json

    name = f"job-{str(job.id)[:8]}-{job.service.name}-result.json"
    datafile = datafile_create_from_json(
        user=job.owner,
        pool=job.result_pool or None,
        name=name,
        payload={"result": job.result, "metadata": job.result_metadata},
    )
    Job.objects.filter(pk=job.pk).update(result_file=datafile)
    job.result_file = datafile
    return datafile
