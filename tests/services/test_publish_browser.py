"""A provider creates a service with a per-execution plan and publishes it through the flow, in a real browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from planqk_samples import sample_zip
from services.models import Lifecycle, PlanKind, Service
from tests.conftest import login
from tests.services.conftest import make_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_media")]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-publish.png"


def test_provider_creates_a_per_execution_service_and_publishes_it(celery_worker, browser_page, live_server, tmp_path):
    user = make_provider()
    archive = tmp_path / "user_code.zip"
    archive.write_bytes(sample_zip("sum"))
    page = browser_page
    login(page, live_server, user)

    page.goto(f"{live_server.url}/services/create/")
    page.fill("input[name=name]", "summer")
    page.fill("input[name=title]", "Summer")
    page.fill("textarea[name=description]", "Adds numbers, priced per execution.")
    page.set_input_files("input[name=file]", str(archive))
    page.uncheck("input[name=plan_free]")
    assert not page.locator("input[name=per_execution_price]").is_visible()  # shown once the plan is chosen
    page.check("input[name=plan_per_execution]")
    page.fill("input[name=per_execution_price]", "0.25")
    page.fill("input[name=per_execution_rpm]", "60")
    page.fill("input[name=per_execution_concurrency]", "2")
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=service-state]")
    service = Service.objects.get(owner=user, name="summer")
    assert [(p.kind, p.price_cents) for p in service.plans.all()] == [(PlanKind.PER_EXECUTION, 25)]

    # The page follows the build; at READY the table, the build status and the publish button agree.
    page.wait_for_selector("[data-testid=service-state][data-final=true]", timeout=300_000)
    state = page.locator("[data-testid=service-state]")
    assert state.locator("[data-testid=version-row][data-status=READY]").count() == 1
    assert state.locator("[data-testid=build-status][data-status=READY]").count() == 1
    assert state.locator("[data-testid=publish]").get_attribute("aria-disabled") is None

    state.locator("[data-testid=publish]").click()
    page.check("input[name=lifecycle][value=PUBLISHED]")
    page.select_option("select[name=new_kind]", "MONTHLY")
    page.fill("input[name=new_name]", "Lab")
    page.fill("input[name=new_price]", "9")
    page.click("[data-testid=publish-preview]")
    preview = page.locator("[data-testid=listing-preview]")
    preview.wait_for()
    assert "Summer" in preview.inner_text()
    assert page.locator("[data-testid=preview-price-from]").inner_text() == "Price from 0.25 EUR"
    assert "Python" in preview.locator("[data-testid=badge-sdk]").all_inner_texts()
    plans = page.locator("[data-testid=preview-plans]").inner_text()
    assert "0.25 EUR per execution" in plans
    assert "9.00 EUR per month" in plans
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.CREATED
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("[data-testid=publish-confirm]")
    page.wait_for_selector("[data-testid=lifecycle][data-lifecycle=PUBLISHED]")
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.PUBLISHED
    assert sorted(p.name for p in service.plans.filter(is_active=True)) == ["Lab", "Per execution"]

    page.goto(f"{live_server.url}/marketplace/")
    card = page.locator("[data-testid=service-card]", has_text="Summer")
    card.wait_for()
    assert "0.25 EUR" in card.inner_text()
