"""The built-in payment simulator: Stripe's test-card behaviour without any network.

It is the embedded default, so the portal works offline. Payment method ids carry the (public)
test card number they stand for; any number that is not one of Stripe's test cards is refused
exactly as Stripe test mode refuses a live card, so no real card number is ever stored.
"""

from __future__ import annotations

import re
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from planqk_portal.errors import ApplicationError

from .base import CardDetails, CardError, ChargeResult, PaymentGateway, SetupIntentInfo
from .testcards import (
    INCORRECT_NUMBER,
    INVALID_CVC,
    INVALID_EXPIRY_MONTH,
    INVALID_EXPIRY_YEAR,
    INVALID_NUMBER,
    LIVE_CARD_IN_TEST_MODE,
    TEST_CARDS,
    TEST_PAYMENT_METHODS,
    Refusal,
    TestCard,
    luhn_valid,
    normalise_number,
)

_PM_RE = re.compile(r"^pm_sim_(\d{12,19})_(\d{2})(\d{4})_[0-9a-f]{8}$")


def _refuse(refusal: Refusal) -> CardError:
    return CardError(refusal.message, code=refusal.code, decline_code=refusal.decline_code)


def _token() -> str:
    return secrets.token_hex(4)


class SimulatorGateway(PaymentGateway):
    name = "simulator"
    uses_stripe_elements = False
    takes_card_numbers = True

    def customer_create(self, *, email: str, reference: str) -> str:
        return f"cus_sim_{secrets.token_hex(8)}"

    def setup_intent_create(self, *, customer_id: str) -> SetupIntentInfo:
        ident = f"seti_sim_{secrets.token_hex(8)}"
        return SetupIntentInfo(id=ident, client_secret=f"{ident}_secret_{secrets.token_hex(8)}")

    def card_from_setup_intent(self, *, customer_id: str, setup_intent_id: str) -> CardDetails:
        raise ApplicationError(
            "The payment simulator saves cards from its own card form; SetupIntents confirmed by Stripe.js "
            "need the Stripe gateway (set STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY).",
            code="payments:setup-intent-unsupported",
        )

    def payment_method_create(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> str:
        """Validate card data as Stripe.js and Stripe do, then tokenise a test card."""
        digits = normalise_number(number)
        if not digits.isdigit() or not 12 <= len(digits) <= 19:
            raise _refuse(INVALID_NUMBER)
        if not luhn_valid(digits) and digits not in TEST_CARDS:
            raise _refuse(INCORRECT_NUMBER)
        today = timezone.now().date()
        if not 1 <= exp_month <= 12:
            raise _refuse(INVALID_EXPIRY_MONTH)
        if not today.year <= exp_year <= today.year + 50:
            raise _refuse(INVALID_EXPIRY_YEAR)
        if exp_year == today.year and exp_month < today.month:
            raise _refuse(INVALID_EXPIRY_MONTH)
        card = TEST_CARDS.get(digits)
        expected_cvc = 4 if card is not None and card.brand == "amex" else 3
        cvc = str(cvc or "").strip()
        if not cvc.isdigit() or len(cvc) != expected_cvc:
            raise _refuse(INVALID_CVC)
        if card is None:
            raise _refuse(LIVE_CARD_IN_TEST_MODE)
        return f"pm_sim_{digits}_{exp_month:02d}{exp_year:04d}_{_token()}"

    def payment_method_for_test_card(self, *, number: str) -> str:
        year = timezone.now().year + 5
        return self.payment_method_create(number=number, exp_month=12, exp_year=year, cvc=self._cvc_for(number))

    @staticmethod
    def _cvc_for(number: str) -> str:
        card = TEST_CARDS.get(normalise_number(number))
        return "1234" if card is not None and card.brand == "amex" else "123"

    def _decode(self, payment_method_id: str) -> tuple[TestCard, int, int]:
        if payment_method_id in TEST_PAYMENT_METHODS:
            number = TEST_PAYMENT_METHODS[payment_method_id]
            return TEST_CARDS[number], 12, timezone.now().year + 5
        match = _PM_RE.match(payment_method_id or "")
        if not match or match.group(1) not in TEST_CARDS:
            raise ApplicationError(
                f"No such PaymentMethod: '{payment_method_id}'.", code="payments:no-such-payment-method", status=404
            )
        return TEST_CARDS[match.group(1)], int(match.group(2)), int(match.group(3))

    def card_attach(self, *, customer_id: str, payment_method_id: str) -> CardDetails:
        card, exp_month, exp_year = self._decode(payment_method_id)
        if card.on_save is not None:
            raise _refuse(card.on_save)
        if payment_method_id in TEST_PAYMENT_METHODS:
            # Stripe clones its shared test PaymentMethods into a new one per attach.
            payment_method_id = f"pm_sim_{card.number}_{exp_month:02d}{exp_year:04d}_{_token()}"
        return CardDetails(
            payment_method_id=payment_method_id,
            brand=card.brand,
            last4=card.number[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
        )

    def card_detach(self, *, payment_method_id: str) -> None:
        return None

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
        from payments.models import SimulatorCharge

        existing = SimulatorCharge.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            card, _, _ = self._decode(payment_method_id)
            refusal = card.on_charge or card.on_save
            try:
                with transaction.atomic():
                    existing = SimulatorCharge.objects.create(
                        idempotency_key=idempotency_key,
                        payment_intent_id=f"pi_sim_{secrets.token_hex(12)}",
                        customer_id=customer_id,
                        payment_method_id=payment_method_id,
                        amount_cents=amount_cents,
                        currency=currency,
                        succeeded=refusal is None,
                        failure_code=refusal.decline_code or refusal.code if refusal else "",
                        failure_message=refusal.message if refusal else "",
                    )
            except IntegrityError:
                # A concurrent request with the same key won: answer with its result, as Stripe does.
                existing = SimulatorCharge.objects.get(idempotency_key=idempotency_key)
        elif existing.amount_cents != amount_cents or existing.payment_method_id != payment_method_id:
            raise ApplicationError(
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                code="payments:idempotency-mismatch",
                status=400,
            )
        return ChargeResult(
            payment_intent_id=existing.payment_intent_id,
            succeeded=existing.succeeded,
            failure_code=existing.failure_code,
            failure_message=existing.failure_message,
        )
