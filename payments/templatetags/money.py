"""Money in templates: amounts are stored in cents."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def money(cents: Any, currency: str = "eur") -> str:
    """``1234, "eur"`` → ``12.34 EUR``."""
    try:
        value = int(cents or 0)
    except (TypeError, ValueError):
        return ""
    return f"{value / 100:,.2f} {str(currency or '').upper()}".strip()


@register.filter
def plan_price(plan: Any) -> str:
    """A plan's price as subscribers read it: "Free", "0.50 EUR per execution", "20.00 EUR per month"."""
    kind = getattr(plan, "kind", None) or getattr(plan, "plan_kind", "")
    price = int(getattr(plan, "price_cents", 0) or 0)
    if kind == "FREE" or price == 0:
        return "Free"
    amount = money(price, getattr(plan, "currency", "eur"))
    return f"{amount} per execution" if kind == "PER_EXECUTION" else f"{amount} per month"
