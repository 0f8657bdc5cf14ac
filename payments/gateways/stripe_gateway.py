"""The Stripe gateway: real stripe-python calls (test mode or live, by the keys configured).

Cards are entered in Stripe Elements in the browser (the number never reaches our server): the
page confirms a SetupIntent with Stripe.js and posts its id back. Server-side, a PaymentMethod id
(one made by Stripe.js, or Stripe's test ids such as ``pm_card_visa``) is attached and verified
with a SetupIntent. Charges are off-session PaymentIntents with an idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe
from django.conf import settings

from planqk_portal.errors import ApplicationError

from .base import CardDetails, CardError, ChargeResult, GatewayUnavailable, PaymentGateway, SetupIntentInfo
from .testcards import TEST_PAYMENT_METHODS, normalise_number

logger = logging.getLogger(__name__)

_TEST_CARD_TO_PM = {number: pm for pm, number in TEST_PAYMENT_METHODS.items()}


def _card_error(exc: stripe.CardError) -> CardError:
    error = getattr(exc, "error", None)
    return CardError(
        exc.user_message or "Your card was declined.",
        code=exc.code or "card_declined",
        decline_code=(getattr(error, "decline_code", None) or "") if error is not None else "",
    )


@contextmanager
def _stripe_errors() -> Iterator[None]:
    """Translate stripe-python's errors into the platform's, with the user's message kept."""
    try:
        yield
    except stripe.CardError as exc:
        raise _card_error(exc) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        logger.error("Stripe refused the credentials: %s", exc)
        raise GatewayUnavailable(
            "The payment service refused the platform's credentials; an administrator must check STRIPE_SECRET_KEY."
        ) from exc
    except stripe.IdempotencyError as exc:
        raise ApplicationError(exc.user_message or str(exc), code="payments:idempotency", status=409) from exc
    except stripe.InvalidRequestError as exc:
        raise ApplicationError(
            exc.user_message or "The payment service refused the request.",
            code=f"payments:{exc.code or 'invalid-request'}",
            # A PaymentMethod or SetupIntent named in the request that does not exist: like any
            # object named by id that is not there (the REST API's 404).
            status=404 if exc.code == "resource_missing" else 400,
        ) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        logger.warning("Stripe unavailable: %s", exc)
        raise GatewayUnavailable() from exc


def _id(value: Any) -> str:
    """An expandable field: either the id string or the expanded object."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value.get("id") or "")


def _details(payment_method: Any) -> CardDetails:
    card = payment_method.get("card") or {}
    return CardDetails(
        payment_method_id=payment_method["id"],
        brand=str(card.get("brand") or "card"),
        last4=str(card.get("last4") or "????"),
        exp_month=int(card.get("exp_month") or 1),
        exp_year=int(card.get("exp_year") or 1970),
    )


class StripeGateway(PaymentGateway):
    name = "stripe"

    def __init__(self, *, secret_key: str | None = None, api_base: str | None = None) -> None:
        secret_key = secret_key if secret_key is not None else settings.STRIPE_SECRET_KEY
        api_base = api_base if api_base is not None else settings.STRIPE_API_BASE
        if not secret_key:
            raise ApplicationError(
                "The Stripe gateway needs STRIPE_SECRET_KEY.", code="payments:not-configured", status=503
            )
        self.publishable_key = settings.STRIPE_PUBLISHABLE_KEY
        # Elements only with a publishable key; otherwise there is nothing the browser could load.
        self.uses_stripe_elements = bool(self.publishable_key)
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else {},
            # Retries are safe: stripe-python sends one idempotency key for all retries of a POST.
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=30),
        )

    def customer_create(self, *, email: str, reference: str) -> str:
        with _stripe_errors():
            customer = self.client.v1.customers.create(
                {"email": email, "metadata": {"platform_user": reference}},
                {"idempotency_key": f"customer-{reference}"},
            )
        return customer.id

    def setup_intent_create(self, *, customer_id: str) -> SetupIntentInfo:
        with _stripe_errors():
            intent = self.client.v1.setup_intents.create(
                {"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]}
            )
        return SetupIntentInfo(id=intent.id, client_secret=intent.client_secret or "")

    def card_from_setup_intent(self, *, customer_id: str, setup_intent_id: str) -> CardDetails:
        with _stripe_errors():
            intent = self.client.v1.setup_intents.retrieve(setup_intent_id)
            if _id(intent.get("customer")) != customer_id:
                raise ApplicationError("No such SetupIntent.", code="payments:no-such-setup-intent", status=404)
            if intent.status != "succeeded":
                error = intent.get("last_setup_error") or {}
                raise CardError(
                    error.get("message") or "The card was not confirmed. Enter it again.",
                    code=error.get("code") or "setup_incomplete",
                    decline_code=error.get("decline_code") or "",
                )
            payment_method = self.client.v1.payment_methods.retrieve(_id(intent.get("payment_method")))
            if _id(payment_method.get("customer")) != customer_id:
                payment_method = self.client.v1.payment_methods.attach(payment_method.id, {"customer": customer_id})
        return _details(payment_method)

    def payment_method_create(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> str:
        raise ApplicationError(
            "With Stripe, card numbers are entered in Stripe's card form, never sent to this server. "
            "Send a PaymentMethod id (payment_method) or a confirmed SetupIntent id (setup_intent) instead.",
            code="payments:card-number-not-accepted",
        )

    def payment_method_for_test_card(self, *, number: str) -> str:
        payment_method = _TEST_CARD_TO_PM.get(normalise_number(number))
        if payment_method is None:
            raise ApplicationError(
                f"No Stripe test PaymentMethod for {number}; use one of {', '.join(sorted(_TEST_CARD_TO_PM))}.",
                code="payments:unknown-test-card",
            )
        return payment_method

    def card_attach(self, *, customer_id: str, payment_method_id: str) -> CardDetails:
        with _stripe_errors():
            payment_method = self.client.v1.payment_methods.attach(payment_method_id, {"customer": customer_id})
        try:
            with _stripe_errors():
                # A zero-amount SetupIntent verifies the card for later off-session charges.
                intent = self.client.v1.setup_intents.create(
                    {
                        "customer": customer_id,
                        "payment_method": payment_method.id,
                        "payment_method_types": ["card"],
                        "usage": "off_session",
                        "confirm": True,
                    }
                )
            if intent.status != "succeeded":
                error = intent.get("last_setup_error") or {}
                if intent.status == "requires_action":
                    raise CardError(
                        "This card requires authentication (3D Secure). Add it in the card form, which can show "
                        "the bank's check.",
                        code="authentication_required",
                    )
                raise CardError(error.get("message") or "Your card was declined.", code=error.get("code") or "")
        except ApplicationError:
            self.card_detach(payment_method_id=payment_method.id)
            raise
        return _details(payment_method)

    def card_detach(self, *, payment_method_id: str) -> None:
        try:
            self.client.v1.payment_methods.detach(payment_method_id)
        except stripe.InvalidRequestError:
            # Already detached or deleted at Stripe: the goal is reached.
            logger.info("PaymentMethod %s was already detached", payment_method_id)
        except stripe.StripeError as exc:
            with _stripe_errors():
                raise exc

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
        with _stripe_errors():
            try:
                intent = self.client.v1.payment_intents.create(
                    {
                        "amount": amount_cents,
                        "currency": currency,
                        "customer": customer_id,
                        "payment_method": payment_method_id,
                        "payment_method_types": ["card"],
                        "off_session": True,
                        "confirm": True,
                        "description": description,
                        "metadata": metadata,
                    },
                    {"idempotency_key": idempotency_key},
                )
            except stripe.CardError as exc:
                # A decline is an answer, not a failure of ours: the invoice records it.
                error = getattr(exc, "error", None)
                intent_id = _id(getattr(error, "payment_intent", None)) if error is not None else ""
                return ChargeResult(
                    payment_intent_id=intent_id,
                    succeeded=False,
                    failure_code=(getattr(error, "decline_code", None) or exc.code or "card_declined"),
                    failure_message=exc.user_message or "Your card was declined.",
                )
        if intent.status == "succeeded":
            return ChargeResult(payment_intent_id=intent.id, succeeded=True)
        if intent.status == "processing":
            return ChargeResult(payment_intent_id=intent.id, succeeded=False, pending=True)
        error = intent.get("last_payment_error") or {}
        return ChargeResult(
            payment_intent_id=intent.id,
            succeeded=False,
            failure_code=error.get("decline_code") or error.get("code") or intent.status,
            failure_message=error.get("message")
            or (
                "The bank asks the cardholder to authenticate this payment."
                if intent.status == "requires_action"
                else "The payment did not go through."
            ),
        )
