"""Reads for the marketplace: published services with a callable version, their plans and versions."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, Exists, F, Min, OuterRef, Prefetch, Q, QuerySet

from services.models import BuildStatus, Lifecycle, PlanKind, PricingPlan, QuantumBackend, Service, ServiceVersion

PRICING_FILTERS = {"free": "Free plan available", "paid": "Paid plans"}
ORDERINGS = {
    "newest": ("Newest", ("-created_at",)),
    "name": ("Name (A to Z)", ("name",)),
    "price": ("Lowest price", (F("min_price").asc(nulls_last=True), "name")),
}


def _callable_versions() -> QuerySet[ServiceVersion]:
    return ServiceVersion.objects.filter(status=BuildStatus.READY, unpublished_at__isnull=True)


def _active_plans() -> QuerySet[PricingPlan]:
    return PricingPlan.objects.filter(is_active=True)


def marketplace_service_list(
    *, search: str = "", quantum_backend: str = "", pricing: str = "", ordering: str = "newest"
) -> QuerySet[Service]:
    """Published services anyone can subscribe to, searched in name, title and description."""
    free = _active_plans().filter(service=OuterRef("pk")).filter(Q(kind=PlanKind.FREE) | Q(price_cents=0))
    paid = _active_plans().filter(service=OuterRef("pk")).exclude(kind=PlanKind.FREE).filter(price_cents__gt=0)
    queryset = (
        Service.objects.filter(lifecycle=Lifecycle.PUBLISHED, deleted_at__isnull=True)
        .filter(Exists(_callable_versions().filter(service=OuterRef("pk"))))
        .select_related("owner")
        .annotate(
            has_free_plan=Exists(free),
            has_paid_plan=Exists(paid),
            min_price=Min("plans__price_cents", filter=Q(plans__is_active=True)),
            min_paid_price=Min(
                "plans__price_cents",
                filter=Q(plans__is_active=True, plans__price_cents__gt=0) & ~Q(plans__kind=PlanKind.FREE),
            ),
        )
    )
    search = (search or "").strip()
    if search:
        for word in search.split()[:8]:
            queryset = queryset.filter(
                Q(name__icontains=word) | Q(title__icontains=word) | Q(description__icontains=word)
            )
    if quantum_backend in QuantumBackend.values:
        queryset = queryset.filter(quantum_backend=quantum_backend)
    if pricing == "free":
        queryset = queryset.filter(has_free_plan=True)
    elif pricing == "paid":
        queryset = queryset.filter(has_paid_plan=True)
    _, order = ORDERINGS.get(ordering, ORDERINGS["newest"])
    return queryset.order_by(*order, "id")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def marketplace_service_get(*, service_id: Any, user: Any = None) -> Service | None:
    """A service as the marketplace shows it: published ones for everyone, any of one's own as a preview."""
    pk = _uuid(service_id)
    if pk is None:
        return None
    service = (
        Service.objects.select_related("owner", "published_version").filter(pk=pk, deleted_at__isnull=True).first()
    )
    if service is None:
        return None
    is_owner = user is not None and getattr(user, "is_authenticated", False) and service.owner_id == user.pk
    if is_owner:
        return service
    if service.lifecycle != Lifecycle.PUBLISHED or not _callable_versions().filter(service=service).exists():
        return None
    return service


def marketplace_listing_prefetch(queryset: QuerySet[Service]) -> QuerySet[Service]:
    """``queryset`` with what each listing's badges need, in two queries for a whole page:
    ``callable_versions`` (newest first) and ``active_plans`` (cheapest first)."""
    versions = _callable_versions().defer("api_spec", "build_handle", "build_error").order_by("-created_at")
    return queryset.prefetch_related(
        Prefetch("versions", queryset=versions, to_attr="callable_versions"),
        Prefetch("plans", queryset=_active_plans().order_by("price_cents", "created_at"), to_attr="active_plans"),
    )


def listing_version(*, service: Service, versions: list[ServiceVersion]) -> ServiceVersion | None:
    """The version a listing shows among ``versions`` (callable, newest first): the published one
    when it is callable, else the newest."""
    published = next((v for v in versions if v.pk == service.published_version_id), None)
    return published or (versions[0] if versions else None)


def marketplace_versions(*, service: Service) -> QuerySet[ServiceVersion]:
    """Versions subscribers can call, newest first."""
    return _callable_versions().filter(service=service).order_by("-created_at")


def marketplace_plans(*, service: Service) -> QuerySet[PricingPlan]:
    """Plans offered to new subscribers, cheapest first."""
    return _active_plans().filter(service=service).order_by("price_cents", "created_at")


def plan_list_for_owner(*, service: Service) -> QuerySet[PricingPlan]:
    """Every plan of the service, the retired ones too, with how many subscriptions still use each."""
    return (
        PricingPlan.objects.filter(service=service)
        .annotate(active_subscriptions=Count("subscriptions", filter=Q(subscriptions__ended_at__isnull=True)))
        .order_by("-is_active", "price_cents", "-created_at")
    )
