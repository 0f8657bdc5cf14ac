"""Reads for applications and subscriptions, scoped to the requesting user."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db.models import Count, Prefetch, Q, QuerySet

from planqk_portal.errors import ApplicationError

from .models import Application, Subscription

if TYPE_CHECKING:
    from accounts.models import User
    from services.models import PricingPlan, Service


def application_list(*, user: User) -> QuerySet[Application]:
    """The user's applications (deleted ones never show), with their active subscription count."""
    return (
        Application.objects.filter(owner=user, deleted_at__isnull=True)
        .select_related("oauth_application")
        .annotate(active_subscriptions=Count("subscriptions", filter=Q(subscriptions__ended_at__isnull=True)))
        .order_by("-created_at", "id")
    )


def application_get(*, user: User, application_id: uuid.UUID | str) -> Application:
    """One of the user's applications, or a 404 ``ApplicationError``."""
    try:
        key = uuid.UUID(str(application_id))
    except ValueError:
        key = None
    application = (
        Application.objects.filter(pk=key, owner=user, deleted_at__isnull=True)
        .select_related("oauth_application")
        .first()
        if key
        else None
    )
    if application is None:
        raise ApplicationError("No such application.", code="application:not-found", status=404)
    return application


def subscription_list(*, application: Application, include_ended: bool = False) -> QuerySet[Subscription]:
    qs = application.subscriptions.select_related("service", "service__owner", "plan", "service__published_version")
    return qs if include_ended else qs.filter(ended_at__isnull=True)


def subscription_get(*, application: Application, subscription_id: uuid.UUID | str) -> Subscription:
    try:
        key = uuid.UUID(str(subscription_id))
    except ValueError:
        key = None
    subscription = (
        subscription_list(application=application, include_ended=True).filter(pk=key).first() if key else None
    )
    if subscription is None:
        raise ApplicationError("No such subscription.", code="subscription:not-found", status=404)
    return subscription


def service_list_subscribable(*, user: User) -> QuerySet[Service]:
    """Services the user's applications may subscribe to: anyone's PUBLISHED, the user's own ACCESSIBLE."""
    from services.models import Lifecycle, PricingPlan, Service

    return (
        Service.objects.filter(
            Q(lifecycle=Lifecycle.PUBLISHED) | Q(lifecycle=Lifecycle.ACCESSIBLE, owner=user),
            deleted_at__isnull=True,
        )
        .select_related("owner")
        .prefetch_related(Prefetch("plans", queryset=PricingPlan.objects.filter(is_active=True)))
        .order_by("name", "id")
    )


def plan_get_subscribable(*, user: User, plan_id: int | str) -> PricingPlan:
    """An active plan of a service the user may subscribe to, or a 404 ``ApplicationError``."""
    from services.models import Lifecycle, PricingPlan

    try:
        key = int(plan_id)
    except (TypeError, ValueError):
        key = None
    plan = (
        PricingPlan.objects.filter(pk=key, service__deleted_at__isnull=True)
        .filter(
            Q(service__lifecycle=Lifecycle.PUBLISHED) | Q(service__lifecycle=Lifecycle.ACCESSIBLE, service__owner=user)
        )
        .select_related("service", "service__owner")
        .first()
        if key is not None
        else None
    )
    if plan is None:
        raise ApplicationError("No such pricing plan.", code="subscription:plan-not-found", status=404)
    return plan
