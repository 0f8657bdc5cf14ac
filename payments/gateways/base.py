"""The payment gateway interface: what the platform needs from Stripe (or the simulator).

Amounts are integers in the currency's smallest unit (cents), as Stripe counts them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from planqk_portal.errors import ApplicationError


@dataclass(frozen=True)
class CardDetails:
    """What is kept of a saved card: never the number, only what identifies it to its owner."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    client_secret: str


@dataclass(frozen=True)
class ChargeResult:
    """The outcome of one charge. ``pending`` means the gateway answers later (by webhook)."""

    payment_intent_id: str
    succeeded: bool
    pending: bool = False
    failure_code: str = ""
    failure_message: str = ""


class CardError(ApplicationError):
    """The card was refused; ``message`` is the gateway's own text (e.g. "Your card was declined.")."""

    def __init__(self, message: str, *, code: str = "card_declined", decline_code: str = "") -> None:
        super().__init__(
            message, code=f"card:{code}", status=402, extra={"decline_code": decline_code} if decline_code else None
        )
        self.card_code = code
        self.decline_code = decline_code


class GatewayUnavailable(ApplicationError):
    """The gateway could not be reached or refused our credentials: nothing was saved or charged."""

    def __init__(
        self, message: str = "The payment service cannot be reached right now. Try again in a minute."
    ) -> None:
        super().__init__(message, code="payments:unavailable", status=503)


class PaymentGateway(ABC):
    """One payment provider. Implementations: ``StripeGateway`` and ``SimulatorGateway``."""

    name: str = ""
    #: True when cards are entered in Stripe Elements (Stripe's script) rather than in our own form.
    uses_stripe_elements: bool = False
    #: True when a card number, expiry and CVC sent to this server are taken (the simulator's test
    #: cards); False when cards come as a SetupIntent confirmed by Stripe.js instead (Stripe).
    takes_card_numbers: bool = False
    publishable_key: str = ""

    @abstractmethod
    def customer_create(self, *, email: str, reference: str) -> str:
        """Create the customer that cards are attached to; returns its id."""

    @abstractmethod
    def setup_intent_create(self, *, customer_id: str) -> SetupIntentInfo:
        """Start saving a card for off-session charges (confirmed in the browser by Stripe.js)."""

    @abstractmethod
    def card_from_setup_intent(self, *, customer_id: str, setup_intent_id: str) -> CardDetails:
        """The card saved by a SetupIntent the browser confirmed; CardError when it did not succeed."""

    @abstractmethod
    def payment_method_create(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> str:
        """Turn card data into a PaymentMethod id (only where card numbers may reach our server)."""

    @abstractmethod
    def payment_method_for_test_card(self, *, number: str) -> str:
        """A PaymentMethod id for one of Stripe's documented test card numbers (demo, tests)."""

    @abstractmethod
    def card_attach(self, *, customer_id: str, payment_method_id: str) -> CardDetails:
        """Attach a PaymentMethod to the customer and verify it with a SetupIntent; CardError on decline."""

    @abstractmethod
    def card_detach(self, *, payment_method_id: str) -> None:
        """Detach a saved card; detaching one that is already gone is not an error."""

    @abstractmethod
    def charge(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        description: str,
        metadata: dict[str, str],
    ) -> ChargeResult:
        """Charge a saved card off-session. The same idempotency key never charges twice."""
