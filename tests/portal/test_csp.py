"""A strict Content-Security-Policy on every page, and the pages still work under it."""

from __future__ import annotations

import pytest
from django.test import override_settings

from applications.services import application_create
from datapools.services import datapool_create, datapool_share
from payments.testing import add_test_card
from services.rendering import render_markdown
from tests.conftest import login, make_user
from tests.payments.helpers import make_plan, make_service, make_subscription


def directives(header: str) -> dict[str, set[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = set(values)
    return parsed


@pytest.mark.django_db
def test_every_kind_of_answer_has_a_strict_policy(client, user):
    client.force_login(user)
    for path in ("/", "/marketplace/", "/accounts/login/", "/api/v1/docs/", "/settings/payments/"):
        response = client.get(path)
        policy = directives(response["Content-Security-Policy"])
        for name in ("script-src", "style-src", "connect-src", "frame-src", "default-src"):
            assert policy[name] == {"'self'"}, (path, name, policy[name])
        assert policy["object-src"] == {"'none'"}
        assert policy["frame-ancestors"] == {"'none'"}
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
@override_settings(PLANQK_PAYMENT_GATEWAY="stripe", STRIPE_SECRET_KEY="sk_test_x", STRIPE_PUBLISHABLE_KEY="pk_test_x")
def test_the_card_page_allows_stripe_js_when_stripe_is_configured(client, user):
    client.force_login(user)
    response = client.get("/settings/payments/")
    assert b"https://js.stripe.com/v3/" in response.content
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == {"'self'", "https://js.stripe.com"}
    assert policy["frame-src"] == {"'self'", "https://js.stripe.com", "https://hooks.stripe.com"}
    assert policy["connect-src"] == {"'self'", "https://api.stripe.com"}
    # Only there: every other page keeps the strict policy.
    assert directives(client.get("/")["Content-Security-Policy"])["script-src"] == {"'self'"}


@pytest.mark.django_db
@override_settings(PLANQK_PAYMENT_GATEWAY="simulator")
def test_the_simulated_card_page_needs_nothing_from_stripe(client, user):
    client.force_login(user)
    response = client.get("/settings/payments/")
    assert b"stripe.com" not in response.content
    assert "stripe.com" not in response["Content-Security-Policy"]


def test_remote_images_in_provider_markdown_are_not_loaded():
    html = render_markdown(
        "![pixel](https://tracker.example/p.png) ![proto](//tracker.example/p.png) "
        '<img src="http://tracker.example/q.png" alt="raw"> ![own](/static/css/logo.png)'
    )
    assert "tracker.example" not in html
    assert '<img alt="pixel">' in html  # the alt text stays, nothing is fetched
    assert 'src="/static/css/logo.png"' in html


@pytest.mark.django_db
def test_a_service_page_does_not_load_the_providers_images(client):
    provider = make_user("provider@example.com")
    service = make_service(provider, "sum", description="Sums. ![pixel](https://tracker.example/p.png)")
    page = client.get(f"/marketplace/{service.pk}/").content.decode()
    assert "tracker.example" not in page


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_main_pages_work_under_the_policy_with_no_violation(browser_page, live_server):
    provider = make_user("provider@example.com")
    service = make_service(provider, "sum", title="Sum", description="Sums *numbers*.")
    plan = make_plan(service)
    add_test_card(provider)
    issued = application_create(owner=provider, name="lab")
    make_subscription(issued.application, service, plan)
    pool = datapool_create(user=provider, name="inputs")
    datapool_share(user=provider, pool=pool, email=make_user("friend@example.com").email)
    page = browser_page
    problems = _watch(page)
    page.goto(f"{live_server.url}/accounts/login/")
    login(page, live_server, provider)

    paths = [
        "/",
        "/marketplace/",
        f"/marketplace/{service.pk}/",
        "/services/",
        f"/services/{service.pk}/",
        "/services/create/",
        "/applications/",
        f"/applications/{issued.application.pk}/",
        "/jobs/",
        "/jobs/new/",
        "/datapools/",
        f"/datapools/{pool.pk}/",
        f"/datapools/{pool.pk}/sharing/",
        "/settings/",
        "/settings/tokens/",
        "/settings/providers/",
        "/settings/payments/",
        "/api/v1/docs/",
    ]
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    assert problems == []

    # Swagger UI of the REST API renders from our static files under the policy.
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    # And the service's own API documentation.
    page.goto(f"{live_server.url}/marketplace/{service.pk}/")
    page.wait_for_selector("#swagger-ui .opblock-summary-path")
    # htmx still swaps (the marketplace search), without inline styles or eval.
    page.goto(f"{live_server.url}/marketplace/")
    page.fill("input[name=q]", "nothing-matches-this")
    page.wait_for_selector("text=No published service matches")
    # A confirmation asked by app.js (no inline handler): dismissing it keeps the share.
    page.goto(f"{live_server.url}/datapools/{pool.pk}/sharing/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("text=Remove")
    page.wait_for_load_state("networkidle")
    assert pool.shares.count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Remove")
    page.wait_for_selector("text=no longer has access")
    assert pool.shares.count() == 0
    assert problems == []
