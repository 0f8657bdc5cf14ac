"""System checks: a payment gateway that cannot work is reported at start-up, not at the first card."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from .gateways import GATEWAYS


def payment_gateway_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    name = settings.PLANQK_PAYMENT_GATEWAY
    if name not in GATEWAYS:
        problems.append(
            Error(f"PLANQK_PAYMENT_GATEWAY is {name!r}; use one of {', '.join(GATEWAYS)}.", id="payments.E001")
        )
    elif name == "stripe":
        if not settings.STRIPE_SECRET_KEY:
            problems.append(Error("The Stripe gateway needs STRIPE_SECRET_KEY.", id="payments.E002"))
        if not settings.STRIPE_PUBLISHABLE_KEY:
            problems.append(
                Warning(
                    "STRIPE_PUBLISHABLE_KEY is empty: the card page cannot show Stripe's card form.",
                    id="payments.W001",
                )
            )
        if not settings.STRIPE_WEBHOOK_SECRET:
            problems.append(
                Warning(
                    "STRIPE_WEBHOOK_SECRET is empty: Stripe's webhooks (payment results) are refused.",
                    id="payments.W002",
                )
            )
    return problems
