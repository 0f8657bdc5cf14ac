"""Operators see on every page what isolation is missing when user code runs without a sandbox."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_staff_see_the_banner_on_every_page_when_the_sandbox_is_off(settings) -> None:
    settings.PLANQK_SANDBOX = "none"
    operator = make_user("operator@example.com")
    operator.is_staff = True
    operator.save()
    client = Client()
    client.force_login(operator)
    for path in ("/", "/jobs/", "/settings/"):
        page = client.get(path, follow=True).content.decode()
        assert 'data-testid="sandbox-banner"' in page, path
        assert "User code runs without a sandbox." in page
        assert "PLANQK_SANDBOX=none" in page


def test_users_who_are_not_staff_and_a_sandboxed_platform_show_no_banner(settings) -> None:
    settings.PLANQK_SANDBOX = "none"
    client = Client()
    client.force_login(make_user("someone@example.com"))
    assert 'data-testid="sandbox-banner"' not in client.get("/").content.decode()
    settings.PLANQK_SANDBOX = "bwrap"
    operator = make_user("operator@example.com")
    operator.is_staff = True
    operator.save()
    client.force_login(operator)
    assert 'data-testid="sandbox-banner"' not in client.get("/").content.decode()
