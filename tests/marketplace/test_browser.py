"""Browse, search and subscribe in a real browser (Debian's Chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from applications.models import Subscription
from applications.services import application_create
from services.models import PlanKind
from tests.conftest import login, make_user
from tests.payments.helpers import make_plan, make_service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_browse_search_and_subscribe(browser_page, live_server):
    provider = make_user("provider@example.com")
    bell = make_service(provider, "bell-states", title="Bell states", description="Entangles *two* qubits.",
                        backend="IBM")  # fmt: skip
    make_plan(bell, name="Free")
    pro = make_plan(bell, PlanKind.PER_EXECUTION, 25, name="Pro")
    make_plan(make_service(provider, "qubo-solver", description="Anneals QUBOs.", backend="DWAVE"))
    subscriber = make_user("subscriber@example.com")
    lab = application_create(owner=subscriber, name="lab").application
    page = browser_page
    login(page, live_server, subscriber)

    page.goto(f"{live_server.url}/marketplace/")
    assert page.locator("[data-testid=service-card]").count() == 2
    page.fill("input[name=q]", "entangles")
    # htmx swaps the results in place and keeps the search in the address bar.
    expect(page.locator("[data-testid=service-card]")).to_have_count(1)
    assert "q=entangles" in page.url
    assert page.locator("[data-testid=service-card]").inner_text().startswith("Bell states")
    page.select_option("select[name=backend]", "DWAVE")
    page.wait_for_selector("text=No published service matches")
    page.click("text=Show all services")
    page.click("text=Bell states")

    page.wait_for_selector("[data-testid=service-title]")
    assert page.locator("[data-testid=description] em").inner_text() == "two"
    assert f"/gateway/{provider.uuid}/bell-states/1.0.0/" in page.locator("[data-testid=endpoint-url]").inner_text()
    assert "PlanqkServiceClient(" in page.locator("[data-testid=python-snippet]").inner_text()
    # Swagger UI, from our own static files, renders the service's spec.
    page.wait_for_selector("#swagger-ui .opblock-summary-path")
    assert "Start an execution" in page.locator("#swagger-ui").inner_text()

    # The paid plan needs a card: the flow says so, links to adding one and comes back with the choices kept.
    page.select_option("select[name=application]", str(lab.pk))
    page.check(f"input[name=plan][value='{pro.pk}']")
    page.click("[data-testid=subscribe]")
    expect(page.locator("[data-testid=subscribe-card]")).to_contain_text("needs a valid card")
    assert not Subscription.objects.exists()

    page.click("[data-testid=add-card-link]")
    page.fill("input[name=number]", "4242 4242 4242 4242")
    page.fill("input[name=expiry]", "12 / 34")
    page.fill("input[name=cvc]", "123")
    page.click("[data-testid=add-card-submit]")
    # Back in the flow: the price to confirm.
    expect(page.locator("[data-testid=review-price]")).to_have_text("0.25 EUR per execution")
    page.click("[data-testid=confirm-subscribe]")
    expect(page.locator("[data-testid=subscribe-done]")).to_contain_text("“lab” is subscribed on the “Pro” plan")
    expect(page.locator("[data-testid=call-curl]")).to_contain_text("bell-states")
    subscription = Subscription.objects.get(application=lab)
    assert (subscription.plan_id, subscription.price_cents) == (pro.pk, 25)


def test_marketplace_reads_well_on_a_phone(browser_page, live_server):
    provider = make_user("provider@example.com")
    service = make_service(provider, "a-service-with-a-rather-long-name-to-wrap", description="x " * 200)
    make_plan(service)
    page = browser_page
    login(page, live_server, provider)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/marketplace/", f"/marketplace/{service.pk}/", f"/marketplace/manage/{service.pk}/plans/"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
