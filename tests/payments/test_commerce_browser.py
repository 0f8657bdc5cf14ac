"""In a real browser: a new subscriber subscribes from the service page with a card added on the
way, an execution's cost shows on the usage page (the README's picture) and on the provider's
earnings page, and a budget refuses the next execution with 402 on the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from applications.models import Application, Subscription
from jobs.admission import execution_admit
from jobs.models import Job, JobStatus
from tests.applications.conftest import make_service
from tests.conftest import login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_subscribe_with_a_card_on_the_way_then_see_the_cost_and_hit_the_budget(browser_page, live_server):
    provider = make_user("provider@example.com")
    target = make_service(provider, name="sum", sample=None, plan_kind="PER_EXECUTION", price_cents=50)
    subscriber = make_user("subscriber@example.com")
    page = browser_page
    login(page, live_server, subscriber)

    page.goto(f"{live_server.url}/marketplace/{target.service.pk}/")
    page.select_option("select[name=application]", "")
    page.fill("input[name=new_application]", "lab")
    page.click("[data-testid=subscribe]")
    page.wait_for_selector("[data-testid=subscribe-card]")
    page.click("[data-testid=add-card-link]")
    page.fill("input[name=number]", "4242 4242 4242 4242")
    page.fill("input[name=expiry]", "12 / 40")
    page.fill("input[name=cvc]", "123")
    page.click("[data-testid=add-card-submit]")
    page.wait_for_selector("[data-testid=subscribe-review]")
    assert "0.50 EUR per execution" in page.locator("[data-testid=review-price]").inner_text()
    page.click("[data-testid=confirm-subscribe]")
    page.wait_for_selector("[data-testid=subscribe-done]")
    secret = page.locator("[data-testid=consumer-secret]").inner_text().strip()
    assert "Authorization: Basic" in page.locator("[data-testid=token-curl]").inner_text()
    assert "Authorization: Bearer $ACCESS_TOKEN" in page.locator("[data-testid=call-curl]").inner_text()
    application = Application.objects.get(owner=subscriber, name="lab")
    subscription = Subscription.objects.get(application=application)

    # One execution that started and succeeded (no worker here: the transitions the engine makes).
    job = execution_admit(service_version=target.version, owner=subscriber, data={"values": [1]}, params={})
    Job.objects.filter(pk=job.pk).update(runtime_starts=1)
    Job.objects.finish(job.pk, status=JobStatus.SUCCEEDED, leaving=(JobStatus.PENDING,))

    page.goto(f"{live_server.url}/settings/payments/usage/")
    assert page.locator("[data-testid=usage-total]").inner_text() == "0.50 EUR"
    assert "0.50 EUR" in page.locator("[data-testid=usage-line-cost]").inner_text()
    page.screenshot(path=str(DOCS / "screenshot-usage.png"), full_page=True)

    # A budget of 0.50 is spent: the next execution is refused on the gateway with 402.
    page.goto(f"{live_server.url}/applications/{application.pk}/")
    page.fill("[data-testid=application-budget-form] input[name=budget]", "0.50")
    page.click("[data-testid=application-budget-form] button")
    page.wait_for_selector("[data-testid=budget-state-application]")
    token = requests.post(
        f"{live_server.url}/gateway/token",
        data={"grant_type": "client_credentials"},
        auth=(application.consumer_key, secret),
        timeout=10,
    ).json()["access_token"]
    refused = requests.post(
        f"{live_server.url}/gateway/{provider.uuid}/sum/1.0.0/",
        json={"data": {"values": [1]}, "params": {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert refused.status_code == 402
    assert refused.json()["code"] == "payments:budget-exceeded"
    assert Job.objects.filter(subscription=subscription).count() == 1

    # The provider sees the same execution's cost on the earnings page.
    page.context.clear_cookies()
    login(page, live_server, provider)
    page.goto(f"{live_server.url}/settings/payments/earnings/")
    assert page.locator("[data-testid=earnings-total]").inner_text() == "0.50 EUR"
    assert "lab" in page.locator("[data-testid=earnings-line]").inner_text()


@pytest.mark.parametrize(
    "path", ["/marketplace/", "/applications/", "/services/", "/jobs/", "/settings/payments/usage/"]
)
def test_list_pages_fit_390_px(browser_page, live_server, path):
    user = make_user("narrow@example.com")
    page = browser_page
    login(page, live_server, user)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}{path}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{path} is {width} px wide"
    name = path.strip("/").replace("/", "-") or "home"
    folder = DOCS.parent / "var" / "test-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"390-{name}.png"), full_page=True)
