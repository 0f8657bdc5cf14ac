"""Sign-up, log-in and personal access tokens in a real browser (Debian's Chromium)."""

import re
from pathlib import Path

import pytest
import requests

from accounts.models import User
from tests.conftest import PASSWORD, login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_sign_up_log_out_and_log_in(browser_page, live_server):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=email]", "newcomer@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("[data-testid=logout]")
    assert User.objects.filter(email="newcomer@example.com").exists()

    page.click("[data-testid=logout]")
    page.wait_for_selector("text=Log in")
    login(page, live_server, User.objects.get(email="newcomer@example.com"))
    assert page.locator("text=Settings").first.is_visible()


def test_duplicate_email_and_wrong_password_get_clear_messages(browser_page, live_server):
    user = make_user("taken@example.com")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("input[name=email]", "taken@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("text=already registered")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", "not-the-password")
    page.click("form button[type=submit]")
    page.wait_for_selector("text=not correct")


def test_token_created_in_browser_works_until_revoked(browser_page, live_server):
    user = make_user("cli-user@example.com")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/settings/tokens/")
    page.fill("input[name=name]", "my laptop")
    page.click("form button[type=submit]:has-text('Create token')")
    secret = page.locator("#new-token").inner_text().strip()
    assert re.fullmatch(r"pqk_[A-Za-z0-9_-]{20,}", secret)

    me = requests.get(f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["email"] == "cli-user@example.com"

    page.goto(f"{live_server.url}/settings/tokens/")
    assert secret not in page.content()  # shown once only
    page.click("text=Revoke")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("text=revoked")
    again = requests.get(f"{live_server.url}/api/v1/me", headers={"X-Auth-Token": secret}, timeout=10)
    assert again.status_code == 401


def test_portal_reads_well_on_a_phone_and_takes_the_readme_screenshot(browser_page, live_server):
    user = make_user("demo-shot@example.com")
    page = browser_page
    login(page, live_server, user)
    page.goto(f"{live_server.url}/")
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "screenshot-home.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/settings/tokens/")
    # On a phone the navigation folds into a menu button and nothing overflows sideways.
    assert page.locator(".nav-toggle-label").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
