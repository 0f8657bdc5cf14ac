"""The service API (ARCHITECTURE section 3): token endpoint and ``/{context_id}/{service}/{version}/...``.

Plain Django views rather than DRF: this is the hot path, every answer is JSON the contract
fixes, and status polling costs one indexed query (and one Redis round trip for the rate limit).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import TokenView
from oauthlib.oauth2 import BackendApplicationServer

import planqk_service_api as service_api
from accounts.models import User
from applications.models import Application, Subscription
from jobs.limits import check_rate, subscription_rate_key
from jobs.models import JOB_FINAL_STATES, InterimResult, Job, JobLogChunk, JobResultFile, JobSource, JobStatus
from planqk_portal.db import as_datetime, as_uuid, partial_instance
from planqk_portal.errors import ApplicationError
from services.models import Generation, Service, ServiceVersion

from .auth import Caller, GatewayAuthError, authenticate
from .jsonio import error_response, json_response, read_json_body, with_contract

logger = logging.getLogger(__name__)

_JOB_FIELDS = ("id", "status", "created_at", "started_at", "ended_at")
#: How long ``PUT /{id}/cancel`` waits for a running execution to stop before answering.
CANCEL_WAIT_SECONDS = 5.0


class GatewayTokenView(TokenView):
    """``POST {GATEWAY_URL}/token``: the client-credentials grant only (RFC 6749 section 4.4).

    Any other grant type is ``unsupported_grant_type``; a wrong key or secret ``invalid_client``
    (401 with ``WWW-Authenticate``). oauthlib adds ``Cache-Control: no-store``.
    """

    server_class = BackendApplicationServer

    @staticmethod
    def _client_key(request: HttpRequest) -> str:
        """Who is asking: the client id of the Basic credentials (RFC 6749 section 2.3.1) or the
        ``client_id`` field, whether or not the secret is right; without one, the address."""
        import base64
        import binascii
        from urllib.parse import unquote

        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        client_id = ""
        if scheme.lower() == "basic" and credentials:
            try:
                client_id = unquote(base64.b64decode(credentials, validate=True).decode().partition(":")[0])
            except (binascii.Error, UnicodeDecodeError):
                client_id = ""
        client_id = client_id or request.POST.get("client_id", "")
        return f"token:client:{client_id[:200]}" if client_id else f"token:addr:{request.META.get('REMOTE_ADDR', '')}"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from django.conf import settings
        from django.http import JsonResponse

        from jobs.limits import LimitExceeded

        # Per client, before any secret is checked: slows guessing a client's secret as well as a
        # client that asks for a token per call. 429 in RFC 6749's error shape.
        try:
            check_rate(
                key=self._client_key(request), limit=settings.PLANQK_TOKEN_REQUESTS_PER_MINUTE, who="The token endpoint"
            )
        except LimitExceeded as exc:
            return JsonResponse(
                {"error": "temporarily_unavailable", "error_description": exc.detail},
                status=429,
                headers={"Retry-After": str(exc.retry_after), "Cache-Control": "no-store", "Pragma": "no-cache"},
            )
        response = super().post(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        if response.status_code == 401 and not response.has_header("WWW-Authenticate"):
            response["WWW-Authenticate"] = 'Basic realm="gateway"'
        if not response.has_header("Content-Type") or "json" not in response["Content-Type"]:
            response["Content-Type"] = "application/json"
        return response

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return error_response(
            "invalid_request", "Request a token with POST (grant_type=client_credentials).", 405, {"Allow": "POST"}
        )


def job_object(job: Job, caller: Caller | None = None, generation: str = Generation.DOCUMENTED) -> dict[str, Any]:
    """The contract's job object (:func:`planqk_service_api.job_object`), or for a version of the
    current generation the current API's execution object (:func:`planqk_service_api.current.execution_object`)."""
    if generation != Generation.CURRENT:
        return service_api.job_object(
            id=job.id, status=job.status, created_at=job.created_at, started_at=job.started_at, ended_at=job.ended_at
        )
    return service_api.current.execution_object(
        id=job.id,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        service_id=job.service_id,
        service_definition_id=job.service_version_id,
        application_id=caller.application_id if caller is not None else job.application_id,
        tags=_tags(job.tags),
    )


def _tags(value: Any) -> list[str]:
    # A raw row's JSON column is text on SQLite and already decoded on PostgreSQL.
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return [tag for tag in value or () if isinstance(tag, str)]


def _generation(job: Job) -> str:
    return getattr(job, "version_generation", None) or Generation.DOCUMENTED


def _base_url(request: HttpRequest, caller: Caller, version: str) -> str:
    """The service version's address, without a trailing slash."""
    from applications.services import gateway_url

    return f"{gateway_url(request)}/{caller.context_id}/{caller.service_name}/{version}"


def gateway_view(
    *methods: str, reads: str = ""
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Authenticate, count the request against the plan, turn every failure into a JSON answer.

    ``reads``: what the authentication query reads as well, in the same round trip: ``"version"``
    (the version's row) or ``"job"`` (the execution's status, for status polling).
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(
            request: HttpRequest, context_id: str, service_name: str, version: str, **kwargs: Any
        ) -> HttpResponse:
            # HEAD is GET without the body (the server drops it), as HTTP says and planqk serve does.
            if request.method not in methods and not (request.method == "HEAD" and "GET" in methods):
                allowed = ", ".join(methods)
                return error_response(
                    "method-not-allowed", f"Use {allowed} here.", 405, {"Allow": allowed}, {"method": request.method}
                )
            try:
                caller = authenticate(
                    request,
                    context_id=context_id,
                    service_name=service_name,
                    version=version if reads else None,
                    job_id=kwargs["job_id"] if reads == "job" else None,
                )
                if request.method != "POST":
                    # A POST starts an execution: admission counts it, on every road alike.
                    check_rate(key=subscription_rate_key(caller.subscription_id), limit=caller.requests_per_minute)
                return view(request, caller, version, **kwargs)
            except GatewayAuthError as exc:
                return error_response(exc.code, exc.detail, exc.status, exc.headers)
            except ApplicationError as exc:
                return error_response(exc.code, exc.message, exc.status, exc.headers, extra=exc.extra)
            except Exception:
                logger.exception("gateway failed on %s %s", request.method, request.path)
                return error_response("server-error", "The gateway failed to handle this request.", 500)

        return wrapper

    return decorate


def _version(caller: Caller, label: str) -> ServiceVersion:
    """The version asked for, from the columns the authentication query read (``reads="version"``).

    Instances with just those columns: loading a version and its service through the ORM would
    also parse their large text fields (the API spec, the description) on every call.
    """
    version = None
    if caller.version_row is not None:
        version_id, status, unpublished_at, timeout_seconds, deleted_at, generation = caller.version_row
        service = partial_instance(
            Service,
            id=caller.service_id,
            owner_id=caller.service_owner_id,
            name=caller.service_name,
            lifecycle=caller.lifecycle,
            source=caller.source,
            timeout_seconds=timeout_seconds,
            deleted_at=as_datetime(deleted_at),
        )
        version = partial_instance(
            ServiceVersion,
            id=as_uuid(version_id),
            service_id=caller.service_id,
            version=label,
            status=status,
            unpublished_at=as_datetime(unpublished_at),
            generation=generation,
        )
        version.service = service
    if version is None:
        raise ApplicationError(
            f"Version {label} of this service does not exist.", code="service:version-not-found", status=404
        )
    return version


def _job(caller: Caller, label: str, job_id: str, *, fields: tuple[str, ...] = _JOB_FIELDS) -> Job:
    """One of the caller's executions of this service version; another application's is a 404."""
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        key = None
    job = (
        Job.objects.filter(
            pk=key,
            application_id=caller.application_id,
            service_id=caller.service_id,
            service_version__version=label,
        )
        .annotate(version_generation=F("service_version__generation"))
        .only(*fields)
        .first()
        if key
        else None
    )
    if job is None:
        raise ApplicationError("No such execution.", code="execution:not-found", status=404)
    return job


def _subscription(caller: Caller) -> Subscription:
    """The authenticated subscription with its terms, from the columns the query read."""
    application = partial_instance(Application, id=caller.application_id, owner_id=caller.owner_id)
    subscription = partial_instance(
        Subscription,
        id=caller.subscription_id,
        application_id=caller.application_id,
        service_id=caller.service_id,
        requests_per_minute=caller.requests_per_minute,
        max_concurrent=caller.max_concurrent,
        plan_kind=caller.plan_kind,
        price_cents=caller.price_cents,
    )
    subscription.application = application
    return subscription


@gateway_view("GET", "POST", reads="version")
def service_root(request: HttpRequest, caller: Caller, version: str) -> HttpResponse:
    """``GET /``: is the service up (for this caller); ``POST /``: start an execution."""
    from jobs.admission import callable_check, execution_admit

    service_version = _version(caller, version)
    current = service_version.generation == Generation.CURRENT
    # The owner's account itself is read only when a rule needs more than its id (a data pool
    # reference, a paid plan's card).
    owner = partial_instance(User, id=caller.owner_id)
    if request.method in ("GET", "HEAD"):
        if current:
            return _executions_page(request, caller, version, service_version)
        callable_check(service_version=service_version, user=owner, subscription=_subscription(caller))
        return json_response({"status": "Service is up and running"})

    document = read_json_body(request)
    if current:
        return _start_current(request, caller, version, service_version, owner, document)
    refs = document.get("dataRef") is not None or document.get("paramsRef") is not None
    if refs or caller.price_cents:
        owner = User.objects.get(pk=caller.owner_id)
    # Admission checks the input like every other rule, the same way on every road.
    job = execution_admit(
        service_version=service_version,
        owner=owner,
        data=document.get("data"),
        params=document.get("params"),
        data_ref=document.get("dataRef"),
        params_ref=document.get("paramsRef"),
        source=JobSource.GATEWAY,
        subscription=_subscription(caller),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return _created(request, caller, version, job, replayed=job.replayed)


def _start_current(
    request: HttpRequest,
    caller: Caller,
    version: str,
    service_version: ServiceVersion,
    owner: User,
    document: dict[str, Any],
) -> HttpResponse:
    """``POST /`` of the current API: the body's top-level keys are the input, plus ``$secrets`` and ``$tags``."""
    from jobs.admission import execution_admit

    # What $secrets and $tags may be is admission's rule (one copy for every road).
    data, secrets, tags = service_api.current.split_request(document)
    if caller.price_cents:
        owner = User.objects.get(pk=caller.owner_id)
    job = execution_admit(
        service_version=service_version,
        owner=owner,
        data=data,
        params=None,
        source=JobSource.GATEWAY,
        subscription=_subscription(caller),
        idempotency_key=request.headers.get("Idempotency-Key"),
        secrets=secrets,
        tags=tags,
    )
    return _created(request, caller, version, job, replayed=job.replayed, generation=Generation.CURRENT)


def _executions_page(
    request: HttpRequest, caller: Caller, version: str, service_version: ServiceVersion
) -> HttpResponse:
    """``GET /`` of the current API: the caller's executions of this version, newest first, a page at a time.

    Only the authenticated application's: another application's executions, the owner's own runs
    from the portal and other versions' are never listed.
    """
    with with_contract():
        page, size = service_api.current.page_request(request.GET.get("page"), request.GET.get("size"))
    jobs = Job.objects.filter(application_id=caller.application_id, service_version_id=service_version.pk)
    total = jobs.count()
    rows = jobs.order_by("-created_at", "-id").only(*_JOB_FIELDS, "service_id", "service_version_id", "tags")[
        page * size : (page + 1) * size
    ]
    executions = [job_object(job, caller, Generation.CURRENT) for job in rows]
    headers = service_api.current.page_headers(
        base_url=_base_url(request, caller, version), page=page, size=size, total=total
    )
    return json_response(executions, headers=headers)


def _created(
    request: HttpRequest,
    caller: Caller,
    version: str,
    job: Job,
    *,
    replayed: bool = False,
    generation: str = Generation.DOCUMENTED,
) -> HttpResponse:
    headers = {"Location": f"{_base_url(request, caller, version)}/{job.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(job_object(job, caller, generation), status=201, headers=headers)


@gateway_view("GET", reads="job")
def execution_status(request: HttpRequest, caller: Caller, version: str, job_id: str) -> HttpResponse:
    """``GET /{id}``: the job object. The hot path: one indexed query, read with the authentication."""
    row = caller.job_row
    if row is None:
        raise ApplicationError("No such execution.", code="execution:not-found", status=404)
    if row[5] == Generation.CURRENT:
        return json_response(
            service_api.current.execution_object(
                id=as_uuid(row[0]),
                status=row[1],
                created_at=as_datetime(row[2]),
                started_at=as_datetime(row[3]),
                ended_at=as_datetime(row[4]),
                service_id=caller.service_id,
                service_definition_id=as_uuid(row[6]),
                application_id=caller.application_id,
                tags=_tags(row[7]),
            )
        )
    return json_response(
        service_api.job_object(
            id=as_uuid(row[0]),
            status=row[1],
            created_at=as_datetime(row[2]),
            started_at=as_datetime(row[3]),
            ended_at=as_datetime(row[4]),
        )
    )


@gateway_view("GET")
def execution_result(request: HttpRequest, caller: Caller, version: str, job_id: str) -> HttpResponse:
    """``GET /{id}/result``: result and metadata, the error, or 409 while not final."""
    fields = (*_JOB_FIELDS, "subscription_id", "result", "result_metadata", "error_code", "error_detail")
    job = _job(caller, version, job_id, fields=(*fields, "service_id", "service_version_id", "tags"))
    if _generation(job) == Generation.CURRENT:
        return hal_result_response(job, caller=caller, base_url=_base_url(request, caller, version))
    return result_response(job)


def hal_result_response(job: Job, *, caller: Caller | None, base_url: str) -> HttpResponse:
    """The current API's result (:func:`planqk_service_api.current.hal_result`), or 409 while not final."""
    current = service_api.current
    if job.status not in JOB_FINAL_STATES:
        return error_response(**_not_finished(job.status))
    if job.status == JobStatus.SUCCEEDED:
        fields = current.result_fields(job.result)
    else:
        fields = current.failure_fields(status=job.status, code=job.error_code, detail=job.error_detail)
    files = JobResultFile.objects.filter(job_id=job.pk).order_by("name").values_list("name", flat=True)
    execution = job_object(job, caller, Generation.CURRENT)
    return json_response(current.hal_result(execution=execution, base_url=base_url, fields=fields, files=files))


def _not_finished(status: str) -> dict[str, Any]:
    error = service_api.not_finished(status)
    return {"code": error.code, "detail": error.detail, "http_status": error.status, "extra": error.extra}


def result_response(job: Job) -> HttpResponse:
    if job.status == JobStatus.SUCCEEDED:
        return json_response({"result": job.result, "metadata": job.result_metadata})
    if job.status in JOB_FINAL_STATES:
        default = {
            JobStatus.FAILED: "The execution failed.",
            JobStatus.CANCELLED: "The execution was cancelled.",
            JobStatus.UNKNOWN: "The execution's outcome is unknown.",
        }[job.status]
        return json_response({"code": job.error_code or job.status, "detail": job.error_detail or default})
    return error_response(
        "execution:not-finished",
        f"The execution is {job.status}; its result is available once it has finished.",
        409,
        extra={"status": job.status},
    )


@gateway_view("GET")
def execution_interim_results(request: HttpRequest, caller: Caller, version: str, job_id: str) -> HttpResponse:
    """``GET /{id}/interim-results``: the interim results so far, oldest first."""
    job = _job(caller, version, job_id, fields=(*_JOB_FIELDS, "subscription_id"))
    payloads = list(InterimResult.objects.filter(job_id=job.pk).order_by("seq").values_list("payload", flat=True))
    return json_response(payloads)


@gateway_view("GET")
def execution_logs(request: HttpRequest, caller: Caller, version: str, job_id: str) -> HttpResponse:
    """``GET /{id}/logs``: the execution's log lines as a JSON list of strings."""
    job = _job(caller, version, job_id, fields=(*_JOB_FIELDS, "subscription_id"))
    text = "".join(JobLogChunk.objects.filter(job_id=job.pk).order_by("seq").values_list("text", flat=True))
    return json_response(text.splitlines())


@gateway_view("GET")
def execution_log(request: HttpRequest, caller: Caller, version: str, job_id: str) -> HttpResponse:
    """``GET /{id}/log``: the log as ``{message, severity, timestamp}`` entries, oldest first; 204
    while there is none yet (both generations: it changes nothing of the documented API)."""
    job = _job(caller, version, job_id, fields=("id",))
    chunks = JobLogChunk.objects.filter(job_id=job.pk).order_by("seq").values_list("text", "created_at")
    entries = service_api.current.log_entries(chunks.iterator())
    if not entries:
        return HttpResponse(status=204)
    return json_response(entries)


@gateway_view("GET")
def execution_result_file(
    request: HttpRequest, caller: Caller, version: str, job_id: str, file_name: str
) -> HttpResponse:
    """``GET /{id}/result/{file}``: one result file, streamed as a download.

    The execution is found exactly as for its status (another application's is the same 404 as
    a missing one); the file by its stored name only, never by a path made from the request.
    """
    job = _job(caller, version, job_id, fields=("id",))
    # A name no stored file can have (PostgreSQL refuses a NUL in a query) is simply not there.
    storable = "\x00" not in file_name and len(file_name) <= JobResultFile._meta.get_field("name").max_length
    result_file = JobResultFile.objects.filter(job_id=job.pk, name=file_name).first() if storable else None
    if result_file is None:
        raise ApplicationError(
            "This execution has no result file of that name.", code="execution:result-file-not-found", status=404
        )
    from jobs.views import result_file_response

    return result_file_response(result_file)


@gateway_view("PUT")
def execution_cancel(request: HttpRequest, caller: Caller, version: str, job_id: str) -> HttpResponse:
    """``PUT /{id}/cancel``: cancel; answers the job object (CANCELLED once it has stopped)."""
    job = _job(caller, version, job_id, fields=(*_JOB_FIELDS, "subscription_id"))
    generation = _generation(job)
    from jobs.services import job_cancel

    job = job_cancel(job=Job.objects.get(pk=job.pk))
    # A running execution stops within seconds: wait briefly so the answer usually says CANCELLED.
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while job.status not in JOB_FINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        job = Job.objects.only(*_JOB_FIELDS, "service_id", "service_version_id", "tags").get(pk=job.pk)
    # Both generations answer the execution (planqk-service-sdk 2.x parses the body of this 200).
    return json_response(job_object(job, caller, generation))


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Anything else under /gateway/: JSON, never the HTML 404 page."""
    return error_response(
        "not_found",
        "No such endpoint. Services are at /gateway/{context_id}/{service_name}/{version}/ and the "
        "token endpoint at /gateway/token.",
        404,
    )
