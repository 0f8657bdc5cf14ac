"""Writes for jobs: submit, cancel, and what happens at a final state.

Jobs are created only by :func:`jobs.admission.execution_admit`; ``job_cancel`` is shared by
the gateway, the REST API and the Jobs pages (signatures in docs/DEVELOPING.md). State changes
are the transitions of ``Job.objects`` (:class:`jobs.models.JobQuerySet`); the execution itself
lives in :mod:`jobs.engine`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

import planqk_service_api as service_api
from planqk_portal.errors import ApplicationError

from .models import JOB_FINAL_STATES, Job, JobStatus

logger = logging.getLogger(__name__)


def input_max_bytes() -> int:
    return int(settings.PLANQK_INPUT_MAX_BYTES)


def body_max_bytes() -> int:
    """The largest request body worth reading for a job's input; anything larger is a 413."""
    return service_api.body_max_bytes(input_max_bytes())


def dataref_max_bytes() -> int:
    """Largest data pool file a job reads as input: data pools are the way to pass more than 1 MB."""
    return int(settings.PLANQK_DATAREF_MAX_BYTES)


def input_check(value: Any, *, name: str, max_bytes: int | None = None) -> Any:
    """Check one input given by value with the service API's rule (:mod:`planqk_service_api`).

    A JSON object (or nothing), not too deep, no NUL or lone surrogates, no infinity, at most
    ``max_bytes`` (default ``PLANQK_INPUT_MAX_BYTES``). Raises ``ApplicationError`` with the
    contract's codes: 400 ``input:*`` or 413 ``input:too-large``.
    """
    if value is None:
        return None
    limit = max_bytes or input_max_bytes()
    try:
        service_api.check_document(value, name)
        if not isinstance(value, dict):
            raise service_api.ServiceAPIError(
                service_api.codes.INPUT_NOT_AN_OBJECT,
                f"{name} must be a JSON object, e.g. {{}}, not {type(value).__name__}.",
            )
        size = service_api.encoded_size(value)
    except service_api.ServiceAPIError as exc:
        raise ApplicationError.from_service_api(exc) from None
    if size > limit:
        raise ApplicationError(
            f"{name} is {size} bytes; at most {limit} bytes may be passed by value. "
            "Put larger input in a data pool and pass a reference instead.",
            code=service_api.codes.INPUT_TOO_LARGE,
            status=413,
        )
    return value


def job_enqueue(*, job_id: Any, on_host: str = "") -> None:
    """Enqueue the execution of a job once the current transaction commits, on the queue routing
    chooses (:mod:`hosts.routing`): its version's runtime or the service's pin, or with
    ``on_host`` (a hand-over of an execution that runs there) that host's own queue."""
    from hosts.routing import queue_for_execution, queue_for_handover

    from .tasks import execute_job

    job_key = str(job_id)
    version = Job.objects.select_related("service_version__service").get(pk=job_id).service_version
    queue = queue_for_handover(version, host=on_host) if on_host else queue_for_execution(version)
    transaction.on_commit(lambda: execute_job.apply_async(args=[job_key], queue=queue))


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
            _, created = UsageRecord.objects.get_or_create(
                job=job,
                defaults={
                    "subscription": subscription,
                    "status": job.status,
                    "duration_ms": round(duration * 1000),
                    "price_cents": price,
                },
            )
    except IntegrityError:
        return  # recorded by a concurrent finisher
    if created and price:
        # Budget notices (80 %, 100 %) once the record is committed; they never fail the transition.
        transaction.on_commit(lambda: _budget_notices(subscription_id=subscription.pk))


def _budget_notices(*, subscription_id: Any) -> None:
    from payments.budgets import budget_notices_check

    try:
        budget_notices_check(subscription_id=subscription_id)
    except Exception:
        logger.exception("budget notices for subscription %s failed", subscription_id)


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
