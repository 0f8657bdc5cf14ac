"""Admission: the one way a Job is made, whichever road the request came by.

The gateway, ``POST /api/v1/jobs/``, Create Job and Run again in the portal, ``planqk run``
(which uses the REST API) and services imported from a URL all call :func:`execution_admit`.
It decides, in one transaction, and with the same answer codes on every road:

1. **Idempotency**: an ``Idempotency-Key`` already used by the same application (or, without
   one, by the same owner) returns that execution again (``job.replayed`` is set), unless it was
   for another service or version (409 ``input:idempotency-key-reused``). A replay costs nothing
   and counts against no limit.
2. **Who may run it**: the service's owner (their own runs, any lifecycle), or an application
   with an active subscription (403 ``subscription:required`` otherwise).
3. **Whether it is callable**: not deleted (404 ``service:not-found``); for a subscriber
   PUBLISHED, or ACCESSIBLE when the application belongs to the service's owner (403
   ``service:not-published``); the version built and not retired (409 ``service:not-callable``).
4. **Payment standing**: a paid plan needs a valid card and no failed invoice (402
   ``payments:card-required`` / ``payments:invoice-unpaid``, with ``add_card_url``), and a
   billable execution must fit the subscription's and the application's monthly budget (402
   ``payments:budget-exceeded``, checked with the concurrency lock held).
5. **The plan's limits**: requests per minute and concurrent executions (429 with
   ``Retry-After``), per subscription; an owner's own runs have the owner quota
   (``PLANQK_OWNER_REQUESTS_PER_MINUTE``, ``PLANQK_OWNER_MAX_CONCURRENT``).
6. **Input**: by value (JSON objects, size, depth, characters, then the ``data``/``params``
   schemas of the version's API spec: 422 ``input:invalid`` listing every error) or by data
   pool reference (checked against the caller's rights now, against the schemas when the
   engine reads the file), and the result pool's write access.

Then the PENDING job is created and its execution enqueued once the transaction commits.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from planqk_portal.errors import ApplicationError

from . import limits
from .models import Job, JobSource

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX = 200


# --- who may run what: the rule, as a check and as a query -------------------------------------


def runnable_services(*, user: Any) -> QuerySet:
    """Services ``user`` may start executions of: what Create Job offers.

    The query form of :func:`_check_callable` (keep the two together): own services, and
    PUBLISHED services one of the user's applications has an active subscription to. (An
    ACCESSIBLE service only takes its owner's applications, so it is among the own ones.)
    """
    from services.models import Lifecycle, Service

    subscribed = Q(
        subscriptions__application__owner=user,
        subscriptions__application__deleted_at__isnull=True,
        subscriptions__ended_at__isnull=True,
        lifecycle=Lifecycle.PUBLISHED,
    )
    return Service.objects.filter(deleted_at__isnull=True).filter(Q(owner=user) | subscribed).distinct()


def _check_callable(*, service_version: Any, user: Any, application: Any) -> None:
    """Raise unless ``service_version`` may run now for ``user`` (through ``application``, if any)."""
    from services.models import Lifecycle

    service = service_version.service
    if service.deleted_at is not None:
        raise ApplicationError("No such service.", code="service:not-found", status=404)
    if application is not None:
        published = service.lifecycle == Lifecycle.PUBLISHED
        internal = service.lifecycle == Lifecycle.ACCESSIBLE and service.owner_id == application.owner_id
        if not (published or internal):
            raise ApplicationError(
                "This service is not published for this application.", code="service:not-published", status=403
            )
    if not service_version.is_callable:
        raise ApplicationError(
            f"Version {service_version.version} of this service cannot be called "
            f"(build status {service_version.status}{', retired' if service_version.unpublished_at else ''}).",
            code="service:not-callable",
            status=409,
        )


def callable_check(*, service_version: Any, user: Any, subscription: Any = None) -> None:
    """The callable part of admission alone (``GET /`` of the gateway answers with it)."""
    application = subscription.application if subscription is not None else None
    _check_callable(service_version=service_version, user=user, application=application)


# --- payment standing ---------------------------------------------------------------------------


def _check_payment_standing(*, subscription: Any, payer: Any) -> None:
    """A paid plan needs a card that can be charged and no invoice whose payment failed."""
    if not subscription.price_cents:
        return
    from django.urls import reverse

    from payments.models import Invoice, InvoiceStatus
    from payments.selectors import card_required_check

    card_required_check(user=payer, action="Running a service on a paid plan")
    if Invoice.objects.filter(subscriber_id=payer.pk, status=InvoiceStatus.FAILED).exists():
        url = reverse("payments:index")
        raise ApplicationError(
            f"An invoice of yours could not be charged. Pay it under Settings → Payments ({url}) to run services "
            "on paid plans again.",
            code="payments:invoice-unpaid",
            status=402,
            extra={"add_card_url": url},
        )


def _check_budget(*, subscription: Any) -> None:
    """A billable execution must not take its subscription or application past a monthly cap (402
    ``payments:budget-exceeded``). Runs in the transaction that creates the job, after the
    concurrency lock, so a burst is counted one request after the other."""
    if subscription.plan_kind != "PER_EXECUTION" or not subscription.price_cents:
        return
    from payments.budgets import budget_check

    budget_check(subscription=subscription, price_cents=subscription.price_cents)


# --- idempotency --------------------------------------------------------------------------------


def _clean_idempotency_key(key: Any) -> str | None:
    if key is None:
        return None
    key = str(key).strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ApplicationError(
            f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
            code="input:bad-idempotency-key",
        )
    return key


def _replay(*, owner: Any, application: Any, key: str, service_version: Any) -> Job | None:
    jobs = Job.objects.filter(idempotency_key=key)
    if application is not None:
        jobs = jobs.filter(application_id=application.pk)
    else:
        jobs = jobs.filter(owner_id=owner.pk, application__isnull=True)
    existing = jobs.first()
    if existing is None:
        return None
    if (existing.service_id, existing.service_version_id) != (service_version.service_id, service_version.pk):
        raise ApplicationError(
            "This Idempotency-Key was already used for an execution of another service or version.",
            code="input:idempotency-key-reused",
            status=409,
        )
    existing.replayed = True
    return existing


# --- input --------------------------------------------------------------------------------------


def _check_input(
    *, owner: Any, service_version: Any, data: Any, params: Any, data_ref: Any, params_ref: Any
) -> tuple[Any, ...]:
    """The service API's input rule (one copy: :func:`planqk_service_api.execution_input`), then the
    data pool references against the caller's rights."""
    import planqk_service_api as service_api

    from .services import input_max_bytes

    document = {"data": data, "dataRef": data_ref, "params": params, "paramsRef": params_ref}
    try:
        checked = service_api.execution_input(document, max_bytes=input_max_bytes())
    except service_api.ServiceAPIError as exc:
        raise ApplicationError.from_service_api(exc) from None
    data_ref, params_ref = checked["data_ref"], checked["params_ref"]
    # The spec's schemas; input given by reference is checked the same way when it is read.
    by_value = {name: checked[name] for name in ("data", "params") if checked[f"{name}_ref"] is None}
    from .selectors import is_current_generation

    if is_current_generation(service_version):
        # The current generation's input is the request body itself: no params, no references.
        if params not in (None, {}) or data_ref is not None or params_ref is not None:
            raise ApplicationError(
                "This service takes its input as the request's top-level keys (no params, dataRef or paramsRef).",
                code="input:invalid",
                status=422,
            )
        body_schema_check(service_version=service_version, data=checked["data"])
    else:
        schema_check(service_version=service_version, **by_value)
    if data_ref is not None:
        data_ref = _ref_check(owner=owner, ref=data_ref)
    if params_ref is not None:
        params_ref = _ref_check(owner=owner, ref=params_ref)
    return checked["data"], checked["params"], data_ref, params_ref


# A version's spec never changes once uploaded, so its compiled schemas are kept per process.
_SCHEMAS: dict[Any, Any] = {}
_SCHEMAS_MAX = 1024


def _cached_schemas(cache: dict[Any, Any], service_version: Any, read: Any, what: str) -> Any:
    """``read(api_spec)`` of the version, compiled once per process; a spec it cannot use (stored
    before uploads refused such specs) takes any object."""
    from planqk_service_api.schema import InputSchemas, SchemaError
    from services.models import ServiceVersion

    schemas = cache.get(service_version.pk)
    if schemas is None:
        text = ServiceVersion.objects.filter(pk=service_version.pk).values_list("api_spec", flat=True).first()
        try:
            schemas = read(text or "")
        except SchemaError as exc:
            logger.warning(
                "version %s: its %s cannot be used (%s); input is not checked", service_version.pk, what, exc
            )
            schemas = InputSchemas(None, None)
        if len(cache) >= _SCHEMAS_MAX:
            cache.clear()
        cache[service_version.pk] = schemas
    return schemas


def version_input_schemas(*, service_version: Any) -> Any:
    """The ``data``/``params`` schemas of the version's API spec (:mod:`planqk_service_api.schema`)."""
    from planqk_service_api.schema import input_schemas_of

    return _cached_schemas(_SCHEMAS, service_version, input_schemas_of, "input schemas")


def schema_check(*, service_version: Any, **inputs: Any) -> None:
    """422 ``input:invalid`` with every error of ``data=``/``params=`` against the version's spec."""
    import planqk_service_api as service_api
    from planqk_service_api.schema import check_input

    if not inputs:
        return
    try:
        check_input(version_input_schemas(service_version=service_version), **inputs)
    except service_api.ServiceAPIError as exc:
        raise ApplicationError.from_service_api(exc) from None


_BODY_SCHEMAS: dict[Any, Any] = {}


def version_body_schemas(*, service_version: Any) -> Any:
    """The current generation's input schema of the version's spec
    (:mod:`planqk_service_api.current_schema`), kept per process like :func:`version_input_schemas`."""
    from planqk_service_api.current_schema import body_schemas_of

    return _cached_schemas(_BODY_SCHEMAS, service_version, body_schemas_of, "request body schema")


def body_schema_check(*, service_version: Any, data: Any) -> None:
    """422 ``input:invalid`` with every error of a current-generation request object."""
    import planqk_service_api as service_api
    from planqk_service_api.current_schema import check_body

    try:
        check_body(version_body_schemas(service_version=service_version), data)
    except service_api.ServiceAPIError as exc:
        raise ApplicationError.from_service_api(exc) from None


# --- secrets and tags (current generation) ------------------------------------------------------


def _clean_secrets(secrets: Any) -> dict[str, str]:
    """``$secrets`` by :func:`planqk_runtime.secrets.clean_secrets` (names that become variables)."""
    from planqk_runtime.secrets import clean_secrets

    try:
        return clean_secrets(secrets)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="input:invalid", status=422) from None


def _clean_tags(tags: Any) -> list[str]:
    from planqk_runtime.secrets import clean_tags

    try:
        return clean_tags(tags)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="input:invalid", status=422) from None


def seal_secrets(secrets: dict[str, str]) -> bytes | None:
    """Secrets encrypted for the job row (the install's key, as provider tokens), or None."""
    if not secrets:
        return None
    import json

    from accounts.crypto import encrypt

    return encrypt(json.dumps(secrets))


class SecretsUnreadable(Exception):
    """A job's sealed secrets cannot be opened (the install's key changed, the row was altered)."""


def open_secrets(ciphertext: bytes | memoryview | None) -> dict[str, str]:
    """What :func:`seal_secrets` sealed ({} when nothing was); :class:`SecretsUnreadable` when it
    cannot be opened: running the program without them, or logging it unredacted, is worse."""
    if not ciphertext:
        return {}
    import json

    from accounts.crypto import decrypt

    try:
        value = json.loads(decrypt(ciphertext))
    except ValueError:
        logger.error("the secrets of a job cannot be decrypted with the install's keys")
        raise SecretsUnreadable from None
    if not isinstance(value, dict):
        raise SecretsUnreadable
    return {str(k): str(v) for k, v in value.items()}


def _ref_check(*, owner: Any, ref: Any) -> dict[str, str]:
    """Check access to a data pool reference now, so the caller learns of a bad one at once."""
    from datapools.selectors import datafile_check_access

    datafile_check_access(user=owner, ref=ref)
    return {key: str(ref[key]) for key in ("dataPoolId", "dataSourceDescriptorId", "fileId")}


def _check_result_pool(*, owner: Any, result_pool: Any) -> None:
    from datapools.selectors import datapool_list_writable

    if not datapool_list_writable(user=owner).filter(pk=result_pool.pk).exists():
        raise ApplicationError("You cannot write into this data pool.", code="datapool:forbidden", status=403)


# --- the subscription a run goes through --------------------------------------------------------


def _subscription_of(*, user: Any, service: Any) -> Any:
    """An active subscription of one of ``user``'s applications to ``service``, or None."""
    from applications.models import Subscription

    return (
        Subscription.objects.select_related("application")
        .filter(
            application__owner=user, application__deleted_at__isnull=True, service_id=service.pk, ended_at__isnull=True
        )
        .order_by("created_at")
        .first()
    )


# --- admission ----------------------------------------------------------------------------------


def execution_admit(
    *,
    service_version: Any,
    owner: Any,
    data: Any = None,
    params: Any = None,
    data_ref: Any = None,
    params_ref: Any = None,
    source: str = JobSource.UI,
    subscription: Any = None,
    idempotency_key: str | None = None,
    save_result_to_pool: bool = False,
    result_pool: Any = None,
    secrets: dict[str, str] | None = None,
    tags: list[str] | None = None,
) -> Job:
    """Admit one execution of ``service_version`` for ``owner`` and enqueue it (see the module doc).

    ``owner`` is whose rights apply: the user of the portal or the REST API, or the owner of the
    calling application. ``subscription``: the one the gateway authenticated; without it, the
    owner of the service runs it under the owner quota and anyone else under their active
    subscription (found here). Raises ``ApplicationError`` with the codes of the module doc.

    A current-generation version takes its input as one object (``data``, the request without
    its ``$`` keys; ``params`` stays None), checked against the spec's whole request body schema.
    ``secrets`` (``$secrets``: names to strings) reach the program as ``SECRET_<NAME>`` variables
    and are stored encrypted only until the final state; ``tags`` (``$tags``) are kept with the job.
    """
    service = service_version.service
    if subscription is None and service.owner_id != owner.pk:
        subscription = _subscription_of(user=owner, service=service)
        if subscription is None:
            raise ApplicationError(
                "Subscribe one of your applications to this service first (Marketplace → the service → Subscribe).",
                code="subscription:required",
                status=403,
            )
    application = subscription.application if subscription is not None else None

    idempotency_key = _clean_idempotency_key(idempotency_key)
    if idempotency_key:
        replay = _replay(owner=owner, application=application, key=idempotency_key, service_version=service_version)
        if replay is not None:
            return replay

    if subscription is not None:
        limits.check_rate(key=limits.subscription_rate_key(subscription.pk), limit=subscription.requests_per_minute)
    else:
        limits.check_rate(
            key=limits.owner_rate_key(owner.uuid),
            limit=int(settings.PLANQK_OWNER_REQUESTS_PER_MINUTE),
            who="Your quota for running your own services",
        )
    _check_callable(service_version=service_version, user=owner, application=application)
    if subscription is not None:
        _check_payment_standing(subscription=subscription, payer=owner)
    data, params, data_ref, params_ref = _check_input(
        owner=owner, service_version=service_version, data=data, params=params, data_ref=data_ref, params_ref=params_ref
    )
    secrets_ciphertext = seal_secrets(_clean_secrets(secrets))
    tags = _clean_tags(tags)
    if result_pool is not None:
        _check_result_pool(owner=owner, result_pool=result_pool)
        save_result_to_pool = True

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
        tags=tags,
        secrets_ciphertext=secrets_ciphertext,
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
    try:
        # The concurrency count and the new row in one transaction: the lock taken by the count
        # holds until the job exists, so two requests cannot both take the last slot. With an
        # Idempotency-Key it is a savepoint too, so losing the race leaves the caller's
        # transaction usable.
        with transaction.atomic():
            if subscription is not None:
                limits.check_concurrency(subscription_id=subscription.pk, limit=subscription.max_concurrent)
                _check_budget(subscription=subscription)
            else:
                limits.check_owner_concurrency(user_id=owner.pk, limit=int(settings.PLANQK_OWNER_MAX_CONCURRENT))
            job.save(force_insert=True)
    except IntegrityError:
        # Two requests with one idempotency key raced: the other one created it.
        replay = idempotency_key and _replay(
            owner=owner, application=application, key=idempotency_key, service_version=service_version
        )
        if replay:
            return replay
        raise
    from .services import job_enqueue

    job_enqueue(job_id=job.pk)
    job.replayed = False
    return job
