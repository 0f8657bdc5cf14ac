"""A provider creates the sum service in a real browser; the build runs on a real worker and the page follows it."""

from __future__ import annotations

import pytest

from planqk_samples import sample_zip
from services.models import Lifecycle, Service
from tests.conftest import login, make_user
from tests.services.conftest import make_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_media")]


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_provider_creates_the_sum_service_and_watches_it_build(celery_worker, browser_page, live_server, tmp_path):
    user = make_provider()
    archive = tmp_path / "user_code.zip"
    archive.write_bytes(sample_zip("sum"))
    page = browser_page
    login(page, live_server, user)

    page.goto(f"{live_server.url}/services/")
    page.wait_for_selector("[data-testid=empty]")
    page.click("[data-testid=create-service]")
    assert page.locator("[data-testid=backend-IBM]").is_disabled()
    assert page.locator("a[href='/settings/providers/']").first.is_visible()
    page.fill("input[name=name]", "sum")
    page.fill("input[name=title]", "Sum")
    page.fill("textarea[name=description]", "**Sums** a list of numbers.\n\n<script>window.pwned = 1</script>")
    page.set_input_files("input[name=file]", str(archive))

    log_answers: list[int] = []
    page.on("response", lambda r: log_answers.append(r.status) if "/logs/" in r.url else None)
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=build-log]")
    service = Service.objects.get(owner=user, name="sum")
    assert page.url == f"{live_server.url}/services/{service.pk}/"

    # The log and the status poll until the build ends; then the page reloads once and stops polling.
    page.wait_for_selector("[data-testid=build-status][data-status=READY]", timeout=300_000)
    page.wait_for_selector("[data-testid=endpoint-url]")
    assert 286 in log_answers
    assert page.locator(".log-poller").count() == 0
    assert page.locator("[hx-trigger]").count() == 0
    log = page.locator("[data-testid=build-log]").inner_text()
    assert "Unpacked" in log
    assert "is READY" in log
    assert page.locator("[data-testid=endpoint-url]").inner_text() == (
        f"{live_server.url}/gateway/{user.uuid}/sum/1.0.0/"
    )
    assert page.locator("[data-testid=description] strong").inner_text() == "Sums"
    assert page.evaluate("window.pwned") is None
    assert page.locator("[data-testid=api-spec]").inner_text().count("/{id}") >= 1

    page.click("[data-testid=publish]")
    page.check("input[name=lifecycle][value=ACCESSIBLE]")
    page.click("[data-testid=publish-preview]")
    page.click("[data-testid=publish-confirm]")
    page.wait_for_selector("[data-testid=lifecycle][data-lifecycle=ACCESSIBLE]")
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.ACCESSIBLE

    page.goto(f"{live_server.url}/services/")
    row = page.locator("[data-testid=service-row][data-name=sum]")
    assert row.locator("[data-status=READY]").count() == 1

    # The same pages on a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/services/", f"/services/{service.pk}/", "/services/create/"):
        page.goto(f"{live_server.url}{path}")
        assert _fits_the_screen(page), path


def test_delete_through_the_confirmation_page(browser_page, live_server):
    from services import services

    user = make_provider()
    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/services/{service.pk}/")
    page.click("[data-testid=delete]")
    page.wait_for_selector("text=cannot be undone")
    assert Service.objects.filter(pk=service.pk).exists()
    page.click("[data-testid=confirm]")
    page.wait_for_selector("text=Service remote deleted.")
    assert not Service.objects.filter(pk=service.pk).exists()
    page.wait_for_selector("[data-testid=empty]")


def test_another_users_service_is_404_in_the_browser(browser_page, live_server):
    from services import services

    owner = make_provider()
    service = services.service_create(owner=owner, name="private", external_url="https://quantum.example.org/x/")
    page = browser_page
    login(page, live_server, make_user())
    response = page.goto(f"{live_server.url}/services/{service.pk}/")
    assert response.status == 404
    assert "private" not in page.content()
