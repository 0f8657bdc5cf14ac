"""The Applications page in a real browser: create, copy the token curl, secret once, regenerate, delete."""

import json
import os
import shlex
import shutil
import subprocess

import pytest

from applications.models import Application
from tests.applications.conftest import make_service
from tests.conftest import login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("PLANQK_TEST_SCREENSHOTS")  # a folder: keep pictures of the pages for review


def run_copied_curl(command: str) -> dict:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    argv = shlex.split(command)
    assert argv[0] == "curl"
    out = subprocess.run(["curl", "-sS", "--max-time", "20", *argv[1:]], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_create_copy_curl_regenerate_and_delete(browser_page, live_server):
    user = make_user("subscriber@example.com")
    provider = make_user("provider-b@example.com")
    make_service(provider, name="sum", sample=None)
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    login(page, live_server, user)

    page.click("nav >> text=Applications")
    page.wait_for_selector("[data-testid=empty]")
    page.fill("input[name=name]", "browser app")
    page.fill("textarea[name=description]", "made in Chromium")
    page.click("form button[type=submit]:has-text('Create application')")
    page.wait_for_selector("[data-testid=issued-secret]")
    secret = page.locator("#consumer-secret").inner_text().strip()
    assert len(secret) >= 32

    page.click("[data-testid=copy-curl]")
    page.wait_for_selector("[data-testid=copy-curl]:has-text('Copied')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"curl -X POST {live_server.url}/gateway/token")
    token = run_copied_curl(copied)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600

    # Shown once: the application's own page never shows it again.
    application = Application.objects.get(name="browser app")
    page.goto(f"{live_server.url}/applications/{application.pk}/")
    assert secret not in page.content()
    assert application.consumer_key in page.locator("[data-testid=consumer-key]").inner_text()

    # Subscribe from the page: the endpoint URL appears.
    page.select_option("select[name=plan]", index=1)
    page.click("[data-testid=subscribe]")
    page.wait_for_selector("[data-testid=subscription-row]")
    endpoint = page.locator("[data-testid=endpoint]").inner_text()
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/applications-desktop.png", full_page=True)
    assert endpoint == f"{live_server.url}/gateway/{provider.uuid}/sum/1.0.0/"

    # Regenerate: the old curl stops working, the new one works.
    page.click("[data-testid=regenerate]")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("[data-testid=issued-secret]")
    new_secret = page.locator("#consumer-secret").inner_text().strip()
    assert new_secret != secret
    assert run_copied_curl(copied)["error"] == "invalid_client"
    assert "access_token" in run_copied_curl(page.locator("#token-curl").inner_text())

    # On a phone the page does not overflow sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/applications/{application.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/applications-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Delete, with a confirmation page first.
    page.click("[data-testid=delete]")
    page.wait_for_selector("text=cannot be undone")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("[data-testid=empty]")
    assert "deleted" in page.content()
    assert run_copied_curl(page.evaluate("navigator.clipboard.readText()"))["error"] == "invalid_client"
