"""Reads for services, scoped to the requesting user."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest

from .models import BuildLogChunk, BuildStatus, Service, ServiceVersion


def service_list_owned(*, user: Any, name: str | None = None) -> QuerySet[Service]:
    """The user's own services (not deleted), newest first, with their latest version's status."""
    latest = ServiceVersion.objects.filter(service=OuterRef("pk")).order_by("-created_at")
    queryset = (
        Service.objects.filter(owner=user, deleted_at__isnull=True)
        .select_related("published_version")
        .annotate(
            latest_version_id=Subquery(latest.values("id")[:1]),
            latest_version_label=Subquery(latest.values("version")[:1]),
            latest_version_status=Subquery(latest.values("status")[:1]),
        )
    )
    if name:
        queryset = queryset.filter(name=name)
    return queryset


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def service_get_owned(*, user: Any, service_id: Any) -> Service | None:
    """One of the user's services, or None (also for another user's service: never reveal it)."""
    pk = _uuid(service_id)
    return service_list_owned(user=user).filter(pk=pk).first() if pk else None


def service_list_usable(*, user: Any) -> QuerySet[Service]:
    """Own services plus those any of the user's applications is subscribed to (Create Job offers these)."""
    return (
        Service.objects.filter(deleted_at__isnull=True)
        .filter(
            Q(owner=user)
            | Q(
                subscriptions__application__owner=user,
                subscriptions__application__deleted_at__isnull=True,
                subscriptions__ended_at__isnull=True,
            ),
        )
        .distinct()
        .order_by("name")
    )


def service_version_list(*, service: Service) -> QuerySet[ServiceVersion]:
    """The service's versions, newest first."""
    return ServiceVersion.objects.filter(service=service).order_by("-created_at")


def service_version_get(*, service: Service, version_id: Any) -> ServiceVersion | None:
    """One version of ``service`` by id, or None."""
    pk = _uuid(version_id)
    return ServiceVersion.objects.select_related("service").filter(service=service, pk=pk).first() if pk else None


def service_version_latest(*, service: Service) -> ServiceVersion | None:
    """The most recently uploaded version, whatever its state."""
    return service_version_list(service=service).first()


def service_version_latest_callable(*, service: Service) -> ServiceVersion | None:
    """The version callers get by default: the published one while it is callable, else the newest callable."""
    published = service.published_version
    if published is not None and published.is_callable:
        return published
    return (
        ServiceVersion.objects.filter(service=service, status=BuildStatus.READY, unpublished_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


def service_version_callable(*, service: Service, version: str) -> ServiceVersion | None:
    """The callable version of ``service`` labelled ``version`` (e.g. "1.0.0"), or None."""
    return ServiceVersion.objects.filter(
        service=service, version=version, status=BuildStatus.READY, unpublished_at__isnull=True
    ).first()


def build_log_chunks(*, version: ServiceVersion) -> QuerySet[BuildLogChunk]:
    """The build log of ``version`` as numbered chunks."""
    return BuildLogChunk.objects.filter(version=version).order_by("seq")


def gateway_url(request: HttpRequest | None = None) -> str:
    """``PLANQK_GATEWAY_URL``, else ``http(s)://<host of the request>/gateway``."""
    configured = (getattr(settings, "PLANQK_GATEWAY_URL", "") or "").rstrip("/")
    if configured:
        return configured
    if request is not None:
        return request.build_absolute_uri("/gateway").rstrip("/")
    return "http://localhost:8000/gateway"


def service_endpoint_url(*, service: Service, version: ServiceVersion | str, request: HttpRequest | None = None) -> str:
    """``{GATEWAY_URL}/{owner uuid}/{service name}/{version}/`` (ARCHITECTURE section 3)."""
    label = version.version if isinstance(version, ServiceVersion) else str(version)
    return f"{gateway_url(request)}/{service.owner.uuid}/{service.name}/{label}/"
