"""Who is calling: the OAuth2 access token → application → its active subscription, in one query.

The hot path (a subscribed application with a valid token) costs exactly one indexed query,
written as SQL because compiling the equivalent ORM query costs ten times the query itself
(see bench/results/gateway.md). Only when that finds nothing do further queries work out which
answer is right: 401 for the token, 404 for an unknown service, 403 for a missing subscription.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from accounts.models import User
from applications.models import Application, Subscription
from planqk_portal.db import as_uuid, fetch_one
from services.models import Service

REALM = 'Bearer realm="gateway"'


class GatewayAuthError(Exception):
    """An authentication or authorisation failure with its HTTP answer."""

    def __init__(self, status: int, code: str, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


@dataclass
class Caller:
    """An authenticated call: ids and terms from the one query; model instances on demand."""

    context_id: str
    service_name: str
    subscription_id: uuid.UUID
    application_id: uuid.UUID
    owner_id: int
    service_id: uuid.UUID
    service_owner_id: int
    lifecycle: str
    source: str
    requests_per_minute: int
    max_concurrent: int
    plan_kind: str = ""
    price_cents: int = 0
    #: ``(id, status, created_at, started_at, ended_at, version generation, version id, tags)`` of
    #: the execution asked for, if any.
    job_row: tuple | None = None
    #: ``(id, status, unpublished_at, service timeout_seconds, service deleted_at, generation)`` of
    #: the version asked for, if any.
    version_row: tuple | None = None

    @cached_property
    def subscription(self) -> Subscription:
        return Subscription.objects.select_related("application__owner", "service__owner").get(pk=self.subscription_id)

    @property
    def application(self) -> Application:
        return self.subscription.application

    @property
    def service(self) -> Service:
        return self.subscription.service


def bearer_token(request: HttpRequest) -> str:
    """The bearer token of the request, or a 401 with the challenge the RFC 6750 client expects."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not header or scheme.lower() != "bearer":
        raise GatewayAuthError(
            401,
            "unauthorized",
            "Send an access token from the token endpoint: Authorization: Bearer <access_token>.",
            challenge=REALM,
        )
    if not token or len(token) > 512 or " " in token:
        raise GatewayAuthError(
            401,
            "invalid_token",
            "The access token is malformed.",
            challenge=f'{REALM}, error="invalid_token", error_description="The access token is malformed"',
        )
    return token


def _invalid_token() -> GatewayAuthError:
    return GatewayAuthError(
        401,
        "invalid_token",
        "The access token is invalid or expired; request a new one from the token endpoint.",
        challenge=f'{REALM}, error="invalid_token", error_description="The access token is invalid or expired"',
    )


def _hot_query(reads: str) -> str:
    # Table names from the models, so a swapped or renamed table cannot silently break this.
    from jobs.models import Job
    from services.models import ServiceVersion

    token = get_access_token_model()._meta.db_table
    extra_columns, extra_join = "", ""
    if reads == "job":
        # Status polling: the execution comes in the same round trip (NULLs when it is not theirs),
        # with what the current API's execution object adds (its version's generation and id, tags).
        extra_columns = ", j.id, j.status, j.created_at, j.started_at, j.ended_at, sv.generation, sv.id, j.tags"
        extra_join = f"""
        LEFT JOIN {ServiceVersion._meta.db_table} sv ON sv.service_id = v.id AND sv.version = %s
        LEFT JOIN {Job._meta.db_table} j ON j.id = %s AND j.application_id = a.id AND j.service_id = v.id
          AND j.service_version_id = sv.id"""
    elif reads == "version":
        # Starting an execution: the version asked for, and what a job of it needs from the service.
        extra_columns = ", sv.id, sv.status, sv.unpublished_at, v.timeout_seconds, v.deleted_at, sv.generation"
        extra_join = f"""
        LEFT JOIN {ServiceVersion._meta.db_table} sv ON sv.service_id = v.id AND sv.version = %s"""
    return f"""
        SELECT s.id, s.application_id, a.owner_id, s.service_id, v.owner_id, v.lifecycle, v.source,
               s.requests_per_minute, s.max_concurrent, s.plan_kind, s.price_cents{extra_columns}
        FROM {token} t
        JOIN {Application._meta.db_table} a ON a.oauth_application_id = t.application_id
        JOIN {Subscription._meta.db_table} s ON s.application_id = a.id
        JOIN {Service._meta.db_table} v ON v.id = s.service_id
        JOIN {User._meta.db_table} u ON u.id = v.owner_id{extra_join}
        WHERE t.token_checksum = %s AND t.expires > %s AND a.deleted_at IS NULL AND s.ended_at IS NULL
          AND u.uuid = %s AND v.name = %s
        LIMIT 1
    """  # noqa: S608 - only model table names are formatted in; values are parameters


_HOT_QUERIES: dict[str, str] = {}


def authenticate(
    request: HttpRequest,
    *,
    context_id: str,
    service_name: str,
    version: str | None = None,
    job_id: str | None = None,
) -> Caller:
    """The caller's active subscription to the service ``context_id/service_name``.

    The same query also reads, with ``version``, that version's row into ``Caller.version_row``
    and, with ``job_id`` too, that execution's status columns into ``Caller.job_row`` (each None
    when there is no such version, or when the execution is not one of the caller's).
    """
    token = bearer_token(request)
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    try:
        owner_uuid = uuid.UUID(context_id)
    except ValueError:
        owner_uuid = None
    now = timezone.now()
    if owner_uuid is not None and len(service_name) <= 64:
        reads = "" if version is None else "version" if job_id is None else "job"
        query = _HOT_QUERIES.get(reads)
        if query is None:
            query = _HOT_QUERIES[reads] = _hot_query(reads)
        params: list[Any] = []
        if reads:
            params.append(version)
        if reads == "job":
            try:
                job_uuid: uuid.UUID | None = uuid.UUID(job_id)
            except ValueError:
                job_uuid = None
            params.append(Subscription._meta.pk.get_db_prep_value(job_uuid, connection))
        params += [
            checksum,
            Subscription._meta.get_field("created_at").get_db_prep_value(now, connection),
            User._meta.get_field("uuid").get_db_prep_value(owner_uuid, connection),
            service_name,
        ]
        row = fetch_one(query, params)
        if row is not None:
            caller = Caller(
                context_id=context_id,
                service_name=service_name,
                subscription_id=as_uuid(row[0]),
                application_id=as_uuid(row[1]),
                owner_id=row[2],
                service_id=as_uuid(row[3]),
                service_owner_id=row[4],
                lifecycle=row[5],
                source=row[6],
                requests_per_minute=row[7],
                max_concurrent=row[8],
                plan_kind=row[9],
                price_cents=row[10],
            )
            if reads == "job" and row[11] is not None:
                caller.job_row = row[11:]
            if reads == "version" and row[11] is not None:
                caller.version_row = row[11:]
            # Whether the service may run now is admission's rule (jobs.admission), checked when
            # an execution starts; reading one's own executions stays possible afterwards.
            return caller
    # Cold path: say what is wrong with the token precisely; about the service, only that this
    # application has no subscription here. A missing service and someone else's answer alike
    # (403, as the contract says for "not subscribed"), so nobody can probe which services exist.
    access_token = (
        get_access_token_model().objects.filter(token_checksum=checksum).values("expires", "application_id").first()
    )
    application = (
        Application.objects.filter(oauth_application_id=access_token["application_id"]).values("deleted_at").first()
        if access_token
        else None
    )
    if access_token is None or access_token["expires"] <= now or application is None or application["deleted_at"]:
        raise _invalid_token()
    raise GatewayAuthError(
        403,
        "subscription:required",
        "This application is not subscribed to a service at this address: subscribe it on the Applications page "
        "first, and check the address (it is shown on the subscription).",
    )
