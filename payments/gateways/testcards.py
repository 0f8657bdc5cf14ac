"""Stripe's documented test cards and how each behaves, for the simulator.

The numbers, messages and codes are those of Stripe's testing documentation, so a user who
practises with the simulator sees exactly what Stripe test mode would show.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    decline_code: str = ""


DECLINED = Refusal("card_declined", "Your card was declined.", "generic_decline")
INSUFFICIENT_FUNDS = Refusal("card_declined", "Your card has insufficient funds.", "insufficient_funds")
LOST_CARD = Refusal("card_declined", "Your card was declined.", "lost_card")
STOLEN_CARD = Refusal("card_declined", "Your card was declined.", "stolen_card")
EXPIRED_CARD = Refusal("expired_card", "Your card has expired.", "expired_card")
INCORRECT_CVC = Refusal("incorrect_cvc", "Your card's security code is incorrect.", "incorrect_cvc")
PROCESSING_ERROR = Refusal(
    "processing_error", "An error occurred while processing your card. Try again in a little bit.", "processing_error"
)
VELOCITY = Refusal("card_declined", "Your card was declined.", "card_velocity_exceeded")
FRAUDULENT = Refusal("card_declined", "Your card was declined.", "fraudulent")
INCORRECT_NUMBER = Refusal("incorrect_number", "Your card number is incorrect.")
INVALID_NUMBER = Refusal("invalid_number", "Your card number is not a valid credit card number.")
INVALID_EXPIRY_MONTH = Refusal("invalid_expiry_month", "Your card's expiration month is invalid.")
INVALID_EXPIRY_YEAR = Refusal("invalid_expiry_year", "Your card's expiration year is invalid.")
INVALID_CVC = Refusal("invalid_cvc", "Your card's security code is invalid.")
LIVE_CARD_IN_TEST_MODE = Refusal(
    "card_declined",
    "Your card was declined. Your request was in test mode, but used a non test (live) card. "
    "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
    "test_mode_live_card",
)
AUTHENTICATION_REQUIRED = Refusal(
    "authentication_required",
    "This card requires authentication (3D Secure), which the built-in payment simulator cannot show. "
    "Use a card without authentication, e.g. 4242 4242 4242 4242.",
    "authentication_required",
)


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    #: Refused when saved (Stripe refuses these cards on attach and on SetupIntent confirmation).
    on_save: Refusal | None = None
    #: Saved fine, refused when charged (4000 0000 0000 0341).
    on_charge: Refusal | None = None


_OK = [
    ("4242424242424242", "visa"),
    ("4000056655665556", "visa"),
    ("5555555555554444", "mastercard"),
    ("2223003122003222", "mastercard"),
    ("5200828282828210", "mastercard"),
    ("5105105105105100", "mastercard"),
    ("378282246310005", "amex"),
    ("371449635398431", "amex"),
    ("6011111111111117", "discover"),
    ("6011000990139424", "discover"),
    ("3056930009020004", "diners"),
    ("36227206271667", "diners"),
    ("3566002020360505", "jcb"),
    ("6200000000000005", "unionpay"),
    # European cards by country (AT, BE, DK, FI, FR, DE, IE, IT, NL, NO, ES, SE, CH, GB).
    ("4000000400000008", "visa"),
    ("4000000560000004", "visa"),
    ("4000002080000001", "visa"),
    ("4000002460000001", "visa"),
    ("4000002500000003", "visa"),
    ("4000002760000016", "visa"),
    ("4000003720000005", "visa"),
    ("4000003800000008", "visa"),
    ("4000005280000002", "visa"),
    ("4000005780000007", "visa"),
    ("4000007240000007", "visa"),
    ("4000007520000008", "visa"),
    ("4000007560000009", "visa"),
    ("4000008260000000", "visa"),
]

TEST_CARDS: dict[str, TestCard] = {number: TestCard(number, brand) for number, brand in _OK}
TEST_CARDS.update(
    {
        card.number: card
        for card in [
            TestCard("4000000000000002", "visa", on_save=DECLINED),
            TestCard("4000000000009995", "visa", on_save=INSUFFICIENT_FUNDS),
            TestCard("4000000000009987", "visa", on_save=LOST_CARD),
            TestCard("4000000000009979", "visa", on_save=STOLEN_CARD),
            TestCard("4000000000000069", "visa", on_save=EXPIRED_CARD),
            TestCard("4000000000000127", "visa", on_save=INCORRECT_CVC),
            TestCard("4000000000000119", "visa", on_save=PROCESSING_ERROR),
            TestCard("4000000000006975", "visa", on_save=VELOCITY),
            TestCard("4100000000000019", "visa", on_save=FRAUDULENT),
            TestCard("4242424242424241", "visa", on_save=INCORRECT_NUMBER),
            TestCard("4000000000000341", "visa", on_charge=DECLINED),
            TestCard("4000002500003155", "visa", on_save=AUTHENTICATION_REQUIRED),
            TestCard("4000002760003184", "visa", on_save=AUTHENTICATION_REQUIRED),
            TestCard("4000000000003220", "visa", on_save=AUTHENTICATION_REQUIRED),
        ]
    }
)

#: Stripe's test PaymentMethod ids and the card each stands for.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_de": "4000002760000016",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequired": "4000002760003184",
}


def luhn_valid(number: str) -> bool:
    """The check digit every card number carries."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def normalise_number(number: str) -> str:
    """Digits only: people type spaces and dashes."""
    return "".join(ch for ch in str(number) if ch not in " -")
