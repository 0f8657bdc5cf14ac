"""Writes for jobs: submit, cancel, and what happens at a final state.

``job_submit`` and ``job_cancel`` are the interface the gateway, the REST API and the Jobs pages
share (signatures in docs/DEVELOPING.md). The execution itself lives in :mod:`jobs.engine`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from planqk_portal.errors import ApplicationError

from .models import JOB_FINAL_STATES, Job, JobSource, JobStatus

logger = logging.getLogger(__name__)

#: Deeper JSON than this is refused: Python's json module recurses once per level and fails
#: near 1000, which would otherwise surface as a RecursionError in the worker or the runner.
INPUT_MAX_DEPTH = 100


def input_max_bytes() -> int:
    return int(getattr(settings, "PLANQK_INPUT_MAX_BYTES", 1024 * 1024))


#: A request body carries data and params of at most input_max_bytes() each, plus the rest of it.
BODY_OVERHEAD_BYTES = 64 * 1024


def body_max_bytes() -> int:
    """The largest request body worth reading for a job's input; anything larger is a 413."""
    return 2 * input_max_bytes() + BODY_OVERHEAD_BYTES


def dataref_max_bytes() -> int:
    """Largest data pool file a job reads as input: data pools are the way to pass more than 1 MB."""
    return int(getattr(settings, "PLANQK_DATAREF_MAX_BYTES", 64 * 1024 * 1024))


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


def _ref_check(*, owner: Any, ref: Any) -> dict[str, Any]:
    """Check access to a data pool reference now, so the caller learns of a bad one at once."""
    from datapools.selectors import datafile_check_access

    datafile_check_access(user=owner, ref=ref)
    return {key: str(ref[key]) for key in ("dataPoolId", "dataSourceDescriptorId", "fileId")}


def _enqueue(job_id: Any) -> None:
    from .tasks import execute_job

    job_key = str(job_id)
    transaction.on_commit(lambda: execute_job.delay(job_key))


def job_submit(
    *,
    service_version: Any,
    owner: Any,
    data: Any = None,
    params: Any = None,
    data_ref: Any = None,
    params_ref: Any = None,
    source: str = JobSource.UI,
    application: Any = None,
    subscription: Any = None,
    idempotency_key: str | None = None,
    save_result_to_pool: bool = False,
    result_pool: Any = None,
) -> Job:
    """Create a PENDING job of ``service_version`` for ``owner`` and enqueue its execution.

    ``data``/``params`` by value (JSON objects, each at most ``PLANQK_INPUT_MAX_BYTES``: 413
    ``input:too-large``; nested too deep: 400 ``input:too-deep``) or ``data_ref``/``params_ref``
    (access is checked now: 400/403/404 ``datapool:*``). With an ``idempotency_key`` already used
    by ``application`` (or, without one, by ``owner``), the existing job is returned unchanged.
    """
    if idempotency_key is not None:
        idempotency_key = str(idempotency_key).strip()[:200] or None
        if idempotency_key:
            existing = _job_by_idempotency_key(owner=owner, application=application, key=idempotency_key)
            if existing is not None:
                return existing

    if data is not None and data_ref is not None:
        raise ApplicationError("Pass data or dataRef, not both.", code="input:ambiguous", status=400)
    if params is not None and params_ref is not None:
        raise ApplicationError("Pass params or paramsRef, not both.", code="input:ambiguous", status=400)
    data = input_check(data, name="data")
    params = input_check(params, name="params")
    if data_ref is not None:
        data_ref = _ref_check(owner=owner, ref=data_ref)
    if params_ref is not None:
        params_ref = _ref_check(owner=owner, ref=params_ref)

    if not service_version.is_callable:
        raise ApplicationError(
            f"Version {service_version.version} of this service cannot be called "
            f"(build status {service_version.status}).",
            code="service:not-callable",
            status=409,
        )
    if result_pool is not None:
        from datapools.selectors import datapool_list_writable

        if not datapool_list_writable(user=owner).filter(pk=result_pool.pk).exists():
            raise ApplicationError("You cannot write into this data pool.", code="datapool:forbidden", status=403)
        save_result_to_pool = True

    service = service_version.service
    timeout = min(
        int(service.timeout_seconds or settings.PLANQK_JOB_DEFAULT_TIMEOUT), int(settings.PLANQK_JOB_MAX_TIMEOUT)
    )
    job = Job(
        service=service,
        service_version=service_version,
        owner=owner,
        application=application,
        subscription=subscription,
        source=source,
        data=data,
        params=params,
        data_ref=data_ref,
        params_ref=params_ref,
        timeout_seconds=timeout,
        idempotency_key=idempotency_key,
        save_result_to_pool=bool(save_result_to_pool),
        result_pool=result_pool,
        enqueue_count=1,
    )
    # Field checks only: the related objects come from the caller, the primary key is a fresh
    # UUID and the database enforces the idempotency constraint (handled below), so full_clean's
    # uniqueness and relation checks would only add queries to the hot path.
    job.clean_fields(
        exclude=[
            "service",
            "service_version",
            "owner",
            "application",
            "subscription",
            "result_pool",
            "result_file",
            "data",
            "params",
        ],
    )
    if not idempotency_key:
        job.save(force_insert=True)
        _enqueue(job.id)
        return job
    try:
        # A savepoint, so that losing the race below leaves the caller's transaction usable.
        with transaction.atomic():
            job.save(force_insert=True)
    except IntegrityError:
        # Two requests with one idempotency key raced: the other one created it.
        existing = _job_by_idempotency_key(owner=owner, application=application, key=idempotency_key)
        if existing:
            return existing
        raise
    _enqueue(job.id)
    return job


def _job_by_idempotency_key(*, owner: Any, application: Any, key: str) -> Job | None:
    jobs = Job.objects.filter(idempotency_key=key)
    if application is not None:
        return jobs.filter(application=application).first()
    return jobs.filter(owner=owner, application__isnull=True).first()


def job_cancel(*, job: Job) -> Job:
    """Cancel a job: a PENDING one never starts; a RUNNING one is stopped within seconds.

    A job that has already ended is returned as it is.
    """
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(
        status=JobStatus.CANCELLED,
        cancel_requested=True,
        ended_at=now,
        error_code="job:cancelled",
        error_detail="Cancelled before it started.",
    ):
        job.refresh_from_db()
        job_record_usage(job=job)
        return job
    # RUNNING: the worker following the execution sees the flag at its next poll and stops it.
    Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def job_enqueue_again(*, job: Job) -> bool:
    """Enqueue a PENDING job whose task seems lost, once; the claim keeps it from running twice."""
    updated = Job.objects.filter(pk=job.pk, status=JobStatus.PENDING, enqueue_count__lt=2).update(
        enqueue_count=F("enqueue_count") + 1
    )
    if updated:
        _enqueue(job.pk)
    return bool(updated)


def job_record_usage(*, job: Job) -> None:
    """Meter a job with a subscription once it is final (idempotent: one record per job).

    Per-execution plans charge executions that ran their code (succeeded or failed with the
    service's own error); a job that never started (cancelled early, unreadable input) or that
    the platform failed costs nothing, but is still recorded with price 0.
    """
    if not job.subscription_id or job.status not in JOB_FINAL_STATES:
        return
    from payments.models import UsageRecord

    subscription = job.subscription
    # External services run at their provider: the platform never starts them itself.
    started = job.runtime_starts > 0 or job.runtime == "external"
    ran = started and (
        job.status == JobStatus.SUCCEEDED or (job.status == JobStatus.FAILED and not job.is_platform_error)
    )
    price = subscription.price_cents if subscription.plan_kind == "PER_EXECUTION" and ran else 0
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
