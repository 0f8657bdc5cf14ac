"""Services imported from a URL: the gateway forwards each call and records the execution.

The provider's service speaks the same API (section 3) at ``Service.external_url``. Our Job
record keeps the execution visible, metered and scoped to the calling application; the
provider's own execution id is kept in :class:`~applications.models.ExternalExecution` and
never shown to the caller, who only ever sees our id.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from applications.models import ExternalExecution
from jobs.engine import EXTERNAL_RUNTIME
from jobs.models import JOB_FINAL_STATES, Job, JobSource, JobStatus
from planqk_portal.errors import ApplicationError
from services.models import ServiceVersion

from .jsonio import json_response

logger = logging.getLogger(__name__)

#: (connect, read) seconds for every call to a provider's service.
TIMEOUT = (5, 30)
#: Answers larger than this are refused (a result passed by value is at most a few MB).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_STATUSES = set(JobStatus.values)


class UpstreamError(Exception):
    """The provider's service could not be reached or answered nonsense: 502/504 for the caller."""

    def __init__(self, detail: str, *, status: int = 502, code: str = "upstream:bad-gateway") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code


def _base(service: Any) -> str:
    return (service.external_url or "").rstrip("/")


def check_forward_address(url: str) -> None:
    """Refuse to forward to loopback, private, link-local or reserved addresses.

    A provider chooses the URL; without this check a service could point the platform at its
    own database, the cloud metadata endpoint or anything else on the platform's network.
    Checked at every call, not only when the URL is saved, because DNS answers change.
    """
    if getattr(settings, "PLANQK_EXTERNAL_ALLOW_PRIVATE", False):
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise UpstreamError(
            f"The service's host name {host!r} cannot be resolved.", code="upstream:unreachable"
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not address.is_global:
            raise UpstreamError(
                f"The service's host {host!r} is on a private or local network ({address}); the platform only "
                "forwards to public addresses (an operator can allow this with PLANQK_EXTERNAL_ALLOW_PRIVATE).",
                code="upstream:private-address",
            )


def _call(method: str, url: str, *, body: Any = None) -> tuple[int, Any]:
    """One call to the provider: ``(status, parsed JSON or None)``; never follows redirects."""
    check_forward_address(url)
    headers = {"Accept": "application/json"}
    try:
        response = requests.request(
            method,
            url,
            data=None if body is None else json.dumps(body, separators=(",", ":")),
            headers={**headers, "Content-Type": "application/json"} if body is not None else headers,
            timeout=TIMEOUT,
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        raise UpstreamError("The service did not answer in time.", status=504, code="upstream:timeout") from None
    except requests.RequestException as exc:
        raise UpstreamError(
            f"The service cannot be reached ({type(exc).__name__}).", code="upstream:unreachable"
        ) from None
    try:
        content = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
    except Exception:
        raise UpstreamError("The service's answer could not be read.") from None
    finally:
        response.close()
    if len(content) > MAX_RESPONSE_BYTES:
        raise UpstreamError("The service's answer is too large.")
    if not content.strip():
        return response.status_code, None
    try:
        return response.status_code, json.loads(content)
    except (ValueError, RecursionError):
        raise UpstreamError(
            f"The service answered HTTP {response.status_code} with something that is not JSON."
        ) from None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(value.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _upstream_error(status: int, payload: Any) -> UpstreamError:
    detail = payload.get("detail") if isinstance(payload, dict) else None
    return UpstreamError(f"The service answered HTTP {status}" + (f": {detail}" if detail else "."))


def health(*, caller: Any) -> HttpResponse:
    status, payload = _call("GET", _base(caller.service) + "/")
    if status >= 500:
        raise _upstream_error(status, payload)
    return json_response(payload if payload is not None else {"status": "Service is up and running"}, status=status)


def start(
    *, caller: Any, service_version: ServiceVersion, execution: dict[str, Any], idempotency_key: str | None
) -> Job:
    """Start the execution at the provider, then record it as our Job (the caller sees our id)."""
    body: dict[str, Any] = {}
    for name in ("data", "params"):
        if execution[name] is not None:
            body[name] = execution[name]
        if execution[f"{name}_ref"] is not None:
            # References name our data pools, which the provider cannot read: refuse them clearly.
            raise ApplicationError(
                "This service runs outside the platform and cannot read data pools: pass data and params by value.",
                code="input:ref-not-supported",
            )
    base = _base(caller.service)
    status, payload = _call("POST", base + "/", body=body)
    if status >= 400 and status < 500 and isinstance(payload, dict):
        # The provider refused the input: pass its own explanation on.
        raise ApplicationError(
            str(payload.get("detail") or payload.get("message") or f"The service refused the input (HTTP {status})."),
            code=str(payload.get("code") or "upstream:refused"),
            status=status if status in (400, 404, 409, 413, 422) else 400,
        )
    if status not in (200, 201, 202) or not isinstance(payload, dict) or not payload.get("id"):
        raise _upstream_error(status, payload)
    external_id = str(payload["id"])[:200]
    job = Job(
        service=caller.service,
        service_version=service_version,
        owner=caller.application.owner,
        application=caller.application,
        subscription=caller.subscription,
        source=JobSource.GATEWAY,
        status=JobStatus.PENDING,
        data=execution["data"],
        params=execution["params"],
        runtime=EXTERNAL_RUNTIME,
        idempotency_key=idempotency_key,
    )
    try:
        with transaction.atomic():
            job.save(force_insert=True)
            ExternalExecution.objects.create(job=job, external_id=external_id, base_url=base)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key recorded its execution first.
        existing = (
            idempotency_key
            and Job.objects.filter(application=caller.application, idempotency_key=idempotency_key).first()
        )
        if not existing:
            raise
        return existing
    _apply(job, payload)
    return job


def _external(job: Job) -> ExternalExecution:
    return ExternalExecution.objects.get(job_id=job.pk)


def _apply(job: Job, payload: Any) -> Job:
    """Copy the provider's status and times onto our Job; meter it once it is final."""
    if not isinstance(payload, dict) or job.status in JOB_FINAL_STATES:
        return job
    status = payload.get("status")
    if status not in _STATUSES:
        status = JobStatus.UNKNOWN if status else job.status
    updates: dict[str, Any] = {"status": status}
    started = _parse_time(payload.get("startedAt"))
    ended = _parse_time(payload.get("endedAt"))
    now = timezone.now()
    if status != JobStatus.PENDING:
        updates["started_at"] = started or job.started_at or now
    if status in JOB_FINAL_STATES:
        updates["ended_at"] = ended or now
    changed = {key: value for key, value in updates.items() if getattr(job, key) != value}
    if not changed:
        return job
    # Conditional: a final state is written once, even when two polls race.
    if Job.objects.filter(pk=job.pk).exclude(status__in=JOB_FINAL_STATES).update(**changed):
        for key, value in changed.items():
            setattr(job, key, value)
        if job.status in JOB_FINAL_STATES:
            from jobs.services import job_record_usage

            job_record_usage(job=Job.objects.select_related("subscription").get(pk=job.pk))
    else:
        job.refresh_from_db()
    return job


def refresh(*, caller: Any, job: Job) -> Job:
    """The provider's current status of the execution, recorded on our Job."""
    if job.status in JOB_FINAL_STATES:
        return job
    record = _external(job)
    status, payload = _call("GET", f"{record.base_url}/{record.external_id}")
    if status != 200:
        raise _upstream_error(status, payload)
    return _apply(job, payload)


def result(*, caller: Any, job: Job) -> HttpResponse:
    record = _external(job)
    status, payload = _call("GET", f"{record.base_url}/{record.external_id}/result")
    if status >= 500:
        raise _upstream_error(status, payload)
    if status == 200 and isinstance(payload, dict):
        if "result" in payload:
            Job.objects.filter(pk=job.pk).update(result=payload.get("result"), result_metadata=payload.get("metadata"))
        elif "code" in payload:
            Job.objects.filter(pk=job.pk).update(
                error_code=str(payload.get("code"))[:100], error_detail=str(payload.get("detail") or "")
            )
    return json_response(payload, status=status)


def passthrough(*, caller: Any, job: Job, suffix: str) -> HttpResponse:
    record = _external(job)
    status, payload = _call("GET", f"{record.base_url}/{record.external_id}/{suffix}")
    if status >= 500:
        raise _upstream_error(status, payload)
    return json_response(payload if payload is not None else [], status=status)


def cancel(*, caller: Any, job: Job) -> Job:
    if job.status in JOB_FINAL_STATES:
        return job
    record = _external(job)
    status, payload = _call("PUT", f"{record.base_url}/{record.external_id}/cancel")
    if status >= 400:
        raise _upstream_error(status, payload)
    return _apply(job, payload)


def external_executions_reap(*, batch: int = 50) -> dict[str, int]:
    """Reaper check: follow executions nobody polls, so they still end and are metered.

    Asks the provider about unfinished executions older than a minute; one that is still not final
    a day past its service's timeout is given up as UNKNOWN.
    """
    from datetime import timedelta

    now = timezone.now()
    counts = {"refreshed": 0, "given_up": 0}
    stale = (
        Job.objects.filter(runtime=EXTERNAL_RUNTIME, created_at__lt=now - timedelta(minutes=1))
        .exclude(status__in=JOB_FINAL_STATES)
        .select_related("service")
        .order_by("created_at")[:batch]
    )
    for job in stale:
        try:
            record = _external(job)
            status, payload = _call("GET", f"{record.base_url}/{record.external_id}")
            if status == 200:
                _apply(job, payload)
                counts["refreshed"] += 1
        except (UpstreamError, ExternalExecution.DoesNotExist):
            logger.info("external execution %s: provider did not answer", job.pk)
        if job.status in JOB_FINAL_STATES:
            continue
        if job.created_at < now - timedelta(seconds=job.service.timeout_seconds) - timedelta(days=1):
            _apply(job, {"status": JobStatus.UNKNOWN})
            Job.objects.filter(pk=job.pk, error_code="").update(
                error_code="upstream:lost", error_detail="The service never reported an end to this execution."
            )
            counts["given_up"] += 1
    return counts
