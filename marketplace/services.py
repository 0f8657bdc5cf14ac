"""Writes for the marketplace: pricing plans, managed by the service owner.

A plan's terms never change in place: a change retires the old row and creates a new one, so
every subscription keeps the terms it was made with (it also holds a copy of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from planqk_portal.errors import ApplicationError
from services.models import Lifecycle, PlanKind, PricingPlan, Service

MAX_ACTIVE_PLANS = 10
MAX_PRICE_CENTS = 10_000_000  # 100,000.00 in the platform currency
LIMITS = {"requests_per_minute": (1, 10_000), "max_concurrent": (1, 100)}


@dataclass(frozen=True)
class PlanTerms:
    name: str
    kind: str
    price_cents: int
    requests_per_minute: int
    max_concurrent: int


def _check_owner(service: Service, actor: Any) -> None:
    if actor is None or service.owner_id != getattr(actor, "pk", None):
        raise ApplicationError("Only the service's owner can change its plans.", code="plan:forbidden", status=403)


def _as_int(value: Any, label: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"{label} must be a whole number.", code="plan:invalid") from None


def plan_terms_check(
    *, name: Any, kind: Any, price_cents: Any, requests_per_minute: Any = 120, max_concurrent: Any = 5
) -> PlanTerms:
    """Validate plan terms; a free plan costs nothing, a paid one costs something."""
    name = str(name or "").strip()
    if not name:
        raise ApplicationError("Give the plan a name, e.g. “Basic”.", code="plan:name-required")
    if len(name) > 60:
        raise ApplicationError("The plan name can be at most 60 characters.", code="plan:name-too-long")
    if kind not in PlanKind.values:
        raise ApplicationError(f"The plan kind must be one of {', '.join(PlanKind.values)}.", code="plan:invalid-kind")
    price = _as_int(price_cents if price_cents not in (None, "") else 0, "The price")
    if kind == PlanKind.FREE:
        if price != 0:
            raise ApplicationError("A free plan has no price.", code="plan:free-has-price")
    elif not 1 <= price <= MAX_PRICE_CENTS:
        raise ApplicationError(
            f"A paid plan costs between 0.01 and {MAX_PRICE_CENTS / 100:,.2f} {settings.PLANQK_CURRENCY.upper()}.",
            code="plan:bad-price",
        )
    values = {}
    for field, raw, label in (
        ("requests_per_minute", requests_per_minute, "Requests per minute"),
        ("max_concurrent", max_concurrent, "Concurrent executions"),
    ):
        value = _as_int(raw, label)
        low, high = LIMITS[field]
        if not low <= value <= high:
            raise ApplicationError(f"{label} must be between {low} and {high}.", code="plan:bad-limit")
        values[field] = value
    return PlanTerms(name=name, kind=kind, price_cents=price, **values)


def plan_terms_list_check(raw: Any) -> list[PlanTerms]:
    """Validate the plans a new service starts with: a list of terms objects, at least one, names unique.

    Each item is a mapping with the keyword arguments of :func:`plan_terms_check`.
    """
    if not isinstance(raw, list) or not raw:
        raise ApplicationError("Offer at least one pricing plan (Free is enough).", code="plan:none")
    if len(raw) > MAX_ACTIVE_PLANS:
        raise ApplicationError(f"A service offers at most {MAX_ACTIVE_PLANS} plans.", code="plan:too-many")
    terms_list: list[PlanTerms] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ApplicationError("Each plan is an object with name, kind and price_cents.", code="plan:invalid")
        allowed = {"name", "kind", "price_cents", "requests_per_minute", "max_concurrent"}
        terms = plan_terms_check(**{"price_cents": 0, **{key: value for key, value in item.items() if key in allowed}})
        if any(other.name.lower() == terms.name.lower() for other in terms_list):
            raise ApplicationError(f"Two plans are named “{terms.name}”.", code="plan:name-taken")
        terms_list.append(terms)
    return terms_list


def pricing_plans_create_initial(*, service: Service, terms_list: list[PlanTerms]) -> list[PricingPlan]:
    """The plans of a service being created (called inside its creating transaction)."""
    return [pricing_plan_create(service=service, actor=service.owner, terms=terms) for terms in terms_list]


def _check_name_free(service: Service, name: str, *, except_plan: PricingPlan | None = None) -> None:
    clash = PricingPlan.objects.filter(service=service, is_active=True, name__iexact=name)
    if except_plan is not None:
        clash = clash.exclude(pk=except_plan.pk)
    if clash.exists():
        raise ApplicationError(f"There is already a plan named “{name}”.", code="plan:name-taken", status=409)


def _create(service: Service, terms: PlanTerms) -> PricingPlan:
    plan = PricingPlan(
        service=service,
        name=terms.name,
        kind=terms.kind,
        price_cents=terms.price_cents,
        currency=settings.PLANQK_CURRENCY,
        requests_per_minute=terms.requests_per_minute,
        max_concurrent=terms.max_concurrent,
        is_active=True,
    )
    plan.full_clean()
    plan.save()
    return plan


def pricing_plan_create(*, service: Service, actor: Any, terms: PlanTerms) -> PricingPlan:
    """Offer a new plan to new subscribers."""
    _check_owner(service, actor)
    with transaction.atomic():
        # Lock the service row so two concurrent additions cannot both pass the checks.
        Service.objects.select_for_update().filter(pk=service.pk).first()
        if PricingPlan.objects.filter(service=service, is_active=True).count() >= MAX_ACTIVE_PLANS:
            raise ApplicationError(
                f"A service offers at most {MAX_ACTIVE_PLANS} plans. Retire one first.", code="plan:too-many"
            )
        _check_name_free(service, terms.name)
        return _create(service, terms)


def pricing_plan_change(*, plan: PricingPlan, actor: Any, terms: PlanTerms) -> PricingPlan:
    """New terms for new subscribers: the old plan is retired, existing subscriptions keep theirs."""
    service = plan.service
    _check_owner(service, actor)
    with transaction.atomic():
        plan = PricingPlan.objects.select_for_update().get(pk=plan.pk)
        if not plan.is_active:
            raise ApplicationError("This plan was already retired or changed.", code="plan:inactive", status=409)
        _check_name_free(service, terms.name, except_plan=plan)
        PricingPlan.objects.filter(pk=plan.pk).update(is_active=False)
        return _create(service, terms)


def pricing_plan_retire(*, plan: PricingPlan, actor: Any) -> PricingPlan:
    """Stop offering a plan; subscriptions made on it go on with their terms."""
    service = plan.service
    _check_owner(service, actor)
    with transaction.atomic():
        plan = PricingPlan.objects.select_for_update().get(pk=plan.pk)
        if not plan.is_active:
            return plan
        others = PricingPlan.objects.filter(service=service, is_active=True).exclude(pk=plan.pk)
        if service.lifecycle != Lifecycle.CREATED and not others.exists():
            raise ApplicationError(
                "A published service needs at least one plan: add another plan before retiring this one.",
                code="plan:last-plan",
                status=409,
            )
        plan.is_active = False
        plan.save(update_fields=["is_active"])
    return plan
