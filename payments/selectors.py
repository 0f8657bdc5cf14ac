"""Reads for payments, always scoped to the requesting user."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import User

from .models import Card, Invoice, InvoiceStatus


def card_list(*, user: User) -> QuerySet[Card]:
    """The user's cards at the configured gateway, newest first."""
    return Card.objects.filter(user=user, gateway=settings.PLANQK_PAYMENT_GATEWAY)


def card_valid_list(*, user: User) -> QuerySet[Card]:
    """Cards that can be charged: at the configured gateway and not past their expiry month."""
    today = timezone.now().date()
    return card_list(user=user).filter(Q(exp_year__gt=today.year) | Q(exp_year=today.year, exp_month__gte=today.month))


def card_for_charging(*, user: User) -> Card | None:
    """The card charges go to: the newest valid one."""
    return card_valid_list(user=user).order_by("-created_at").first()


def user_has_valid_card(*, user: User) -> bool:
    """True when the user has a card that can be charged (needed to create services and buy paid plans)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return card_valid_list(user=user).exists()


def invoice_list(*, user: User) -> QuerySet[Invoice]:
    """Invoices the user pays (as a subscriber)."""
    return Invoice.objects.filter(subscriber=user).order_by("-period_start", "-created_at")


def invoice_get(*, user: User, invoice_id: object) -> Invoice | None:
    """One of the user's invoices, as subscriber or as provider; None otherwise."""
    return (
        Invoice.objects.filter(Q(subscriber=user) | Q(provider=user), pk=invoice_id).prefetch_related("lines").first()
    )


def earnings_list(*, user: User) -> QuerySet[Invoice]:
    """Invoices of subscriptions to the user's services (what the provider earns)."""
    return (
        Invoice.objects.filter(provider=user)
        .exclude(status=InvoiceStatus.VOID)
        .order_by("-period_start", "-created_at")
    )


def earnings_totals(*, user: User) -> dict[str, int]:
    """Paid and outstanding sums over all of the provider's invoices, in cents."""
    rows = earnings_list(user=user).aggregate(
        paid=Sum("amount_cents", filter=Q(status=InvoiceStatus.PAID)),
        outstanding=Sum("amount_cents", filter=~Q(status=InvoiceStatus.PAID)),
        count=Count("id"),
    )
    return {key: int(value or 0) for key, value in rows.items()}


def card_required_check(*, user: User, action: str = "Creating a service") -> None:
    """Raise a 402 ``payments:card-required`` (with where to add a card) unless the user has a valid card."""
    from django.urls import reverse

    from planqk_portal.errors import ApplicationError

    if user_has_valid_card(user=user):
        return
    url = reverse("payments:index")
    raise ApplicationError(
        f"{action} needs a valid card. Add one under Settings → Payments ({url}); "
        "in test mode the card 4242 4242 4242 4242 works.",
        code="payments:card-required",
        status=402,
        extra={"add_card_url": url},
    )
