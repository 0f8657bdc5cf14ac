"""Payment gateways, chosen by the ``PLANQK_PAYMENT_GATEWAY`` setting (``simulator`` or ``stripe``)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import CardDetails, CardError, ChargeResult, GatewayUnavailable, PaymentGateway, SetupIntentInfo

GATEWAYS = ("simulator", "stripe")

__all__ = [
    "GATEWAYS",
    "CardDetails",
    "CardError",
    "ChargeResult",
    "GatewayUnavailable",
    "PaymentGateway",
    "SetupIntentInfo",
    "get_gateway",
]


def get_gateway(name: str | None = None) -> PaymentGateway:
    """The configured gateway (built per call: settings may change in tests, and it is cheap)."""
    name = name or settings.PLANQK_PAYMENT_GATEWAY
    if name == "simulator":
        from .simulator import SimulatorGateway

        return SimulatorGateway()
    if name == "stripe":
        from .stripe_gateway import StripeGateway

        return StripeGateway()
    raise ImproperlyConfigured(f"PLANQK_PAYMENT_GATEWAY must be one of {', '.join(GATEWAYS)}, got {name!r}.")
