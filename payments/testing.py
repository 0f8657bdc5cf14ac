"""Helpers for tests of every app: give a user a valid card through the configured gateway."""

from __future__ import annotations

from accounts.models import User

from .models import Card

VISA = "4242424242424242"


def add_test_card(user: User, number: str = VISA) -> Card:
    """Save one of Stripe's test cards for ``user`` (the simulator in tests: no network)."""
    from .gateways import get_gateway
    from .services import card_add_payment_method

    payment_method_id = get_gateway().payment_method_for_test_card(number=number)
    return card_add_payment_method(user=user, payment_method_id=payment_method_id)
