"""Cards in a real browser with the simulator's own card form."""

from __future__ import annotations

import pytest

from payments.models import Card
from tests.conftest import login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_card(page, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    page.fill("input[name=number]", number)
    page.fill("input[name=expiry]", expiry)
    page.fill("input[name=cvc]", cvc)
    page.click("[data-testid=add-card-submit]")


def test_declined_card_shows_stripes_message_then_a_good_card_is_added_and_removed(browser_page, live_server):
    user = make_user("payer@example.com")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/settings/payments/")
    page.wait_for_selector("[data-testid=no-cards]")
    assert "js.stripe.com" not in page.content()  # the simulator needs no outside script

    add_card(page, "4000 0000 0000 0002")
    assert page.locator("[data-testid=card-error]").inner_text() == "Your card was declined."
    add_card(page, "4000 0000 0000 9995")
    assert page.locator("[data-testid=card-error]").inner_text() == "Your card has insufficient funds."
    add_card(page, "4242 4242 4242 4242", expiry="13 / 30")
    assert "expiration month is invalid" in page.locator("[data-testid=card-error]").inner_text()
    assert not Card.objects.exists()

    add_card(page, "4242 4242 4242 4242")
    page.wait_for_selector("[data-testid=card-row]")
    assert "4242" in page.locator("[data-testid=card-row]").inner_text()
    assert "4242424242424242" not in page.content()

    page.click("[data-testid=card-row] >> text=Remove")
    assert "your only valid card" in page.content()
    page.click("[data-testid=confirm]")
    page.wait_for_selector("[data-testid=no-cards]")
    assert not Card.objects.exists()


def test_payments_page_reads_well_on_a_phone(browser_page, live_server):
    user = make_user("phone@example.com")
    page = browser_page
    login(page, live_server, user)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/settings/payments/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
