"""Demo content: the demo account gets Stripe's 4242 test card, so it can create services."""

from __future__ import annotations

from typing import TextIO

from accounts.models import User
from planqk_portal.errors import ApplicationError

from .selectors import user_has_valid_card
from .testing import add_test_card


def seed_demo(user: User, stdout: TextIO) -> None:
    """Idempotent: only adds a card when the demo account has no valid one."""
    if user_has_valid_card(user=user):
        stdout.write("Payments: the demo account already has a card.\n")
        return
    try:
        card = add_test_card(user)
    except ApplicationError as exc:
        # A demo without a reachable gateway still starts; services just ask for a card.
        stdout.write(f"Payments: could not add the demo card ({exc.message}).\n")
        return
    stdout.write(f"Payments: demo card {card} added (Stripe test card 4242 4242 4242 4242).\n")
