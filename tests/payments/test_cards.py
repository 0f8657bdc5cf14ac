"""Cards through the simulator: Stripe's test cards behave as in Stripe test mode."""

import pytest
from django.utils import timezone

from payments import selectors, services
from payments.models import Card
from payments.testing import add_test_card
from planqk_portal.errors import ApplicationError

pytestmark = pytest.mark.django_db
YEAR = timezone.now().year + 3


def test_visa_test_card_is_saved_and_makes_the_user_valid(user):
    assert not selectors.user_has_valid_card(user=user)
    card = services.card_add_number(user=user, number="4242 4242 4242 4242", exp_month=12, exp_year=YEAR, cvc="123")
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, YEAR)
    assert selectors.user_has_valid_card(user=user)
    assert "4242424242424242" not in card.payment_method_id or card.payment_method_id.startswith("pm_sim_")


@pytest.mark.parametrize(
    ("number", "message", "code"),
    [
        ("4000000000000002", "Your card was declined.", "card:card_declined"),
        ("4000000000009995", "Your card has insufficient funds.", "card:card_declined"),
        ("4000000000000069", "Your card has expired.", "card:expired_card"),
        ("4000000000000127", "Your card's security code is incorrect.", "card:incorrect_cvc"),
        ("4242424242424241", "Your card number is incorrect.", "card:incorrect_number"),
        ("4000000000009987", "Your card was declined.", "card:card_declined"),
    ],
)
def test_declining_test_cards_are_refused_with_stripes_message(user, number, message, code):
    with pytest.raises(ApplicationError) as exc:
        services.card_add_number(user=user, number=number, exp_month=12, exp_year=YEAR, cvc="123")
    assert exc.value.message == message
    assert exc.value.code == code
    assert not Card.objects.filter(user=user).exists()
    assert not selectors.user_has_valid_card(user=user)


def test_a_live_card_number_is_refused_in_test_mode(user):
    with pytest.raises(ApplicationError) as exc:
        services.card_add_number(user=user, number="4111 1111 1111 1111", exp_month=12, exp_year=YEAR, cvc="123")
    assert "test mode" in exc.value.message


@pytest.mark.parametrize(
    ("month", "year", "cvc", "message"),
    [
        (13, YEAR, "123", "Your card's expiration month is invalid."),
        (12, 2001, "123", "Your card's expiration year is invalid."),
        (12, YEAR, "12", "Your card's security code is invalid."),
    ],
)
def test_bad_card_data_gets_a_clear_message(user, month, year, cvc, message):
    with pytest.raises(ApplicationError) as exc:
        services.card_add_number(user=user, number="4242424242424242", exp_month=month, exp_year=year, cvc=cvc)
    assert exc.value.message == message


def test_stripe_test_payment_method_ids_work_in_the_simulator(user):
    card = services.card_add_payment_method(user=user, payment_method_id="pm_card_mastercard")
    assert (card.brand, card.last4) == ("mastercard", "4444")
    with pytest.raises(ApplicationError, match=r"Your card was declined\."):
        services.card_add_payment_method(user=user, payment_method_id="pm_card_chargeDeclined")


def test_removing_the_card_removes_the_right_to_create_services(user, other_user):
    card = add_test_card(user)
    with pytest.raises(ApplicationError) as exc:
        services.card_remove(user=other_user, card_id=card.pk)
    assert exc.value.status == 404
    services.card_remove(user=user, card_id=card.pk)
    assert not selectors.user_has_valid_card(user=user)


def test_an_expired_saved_card_does_not_count(user):
    card = add_test_card(user)
    Card.objects.filter(pk=card.pk).update(exp_year=2020)
    assert not selectors.user_has_valid_card(user=user)


def test_card_limit(user):
    for _ in range(services.MAX_CARDS_PER_USER):
        add_test_card(user)
    with pytest.raises(ApplicationError, match="at most"):
        add_test_card(user)
