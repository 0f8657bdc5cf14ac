"""Applications pages with Django's client: what a user sees and every form's error path."""

import base64
import re

import pytest

from applications.models import Application, Subscription
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def test_login_required(client):
    response = client.get("/applications/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_empty_page_says_what_to_do_next(logged_in):
    html = logged_in.get("/applications/").content.decode()
    assert "No applications yet" in html
    assert "Create application" in html


def test_create_shows_the_secret_once_with_the_token_curl(logged_in, user):
    response = logged_in.post("/applications/", {"name": "notebook", "description": "for my analysis"})
    assert response.status_code == 200
    html = response.content.decode()
    application = Application.objects.get(owner=user, name="notebook")
    secret = re.search(r'id="consumer-secret" class="secret">([^<]+)<', html).group(1)
    basic = base64.b64encode(f"{application.consumer_key}:{secret}".encode()).decode()
    expected = (
        f'curl -X POST http://testserver/gateway/token -d "grant_type=client_credentials" '
        f'-H "Authorization: Basic {basic}"'
    )
    assert expected in html.replace("&quot;", '"')
    # Never again: the detail page has no secret and no base64 of it.
    later = logged_in.get(f"/applications/{application.pk}/").content.decode()
    assert secret not in later
    assert basic not in later
    assert application.consumer_key in later
    assert "Regenerate" in later


def test_create_errors_are_shown_in_the_form(logged_in, user):
    make_app(user, "taken")
    html = logged_in.post("/applications/", {"name": "taken"}).content.decode()
    assert "already have an application named" in html
    html = logged_in.post("/applications/", {"name": ""}).content.decode()
    assert "This field is required" in html
    assert Application.objects.filter(owner=user).count() == 1


def test_list_is_paginated(logged_in, user):
    for number in range(23):
        make_app(user, f"app {number:02d}")
    first = logged_in.get("/applications/").content.decode()
    assert first.count('data-testid="application-row"') == 20
    assert "Page 1 of 2" in first
    second = logged_in.get("/applications/?page=2").content.decode()
    assert second.count('data-testid="application-row"') == 3


def test_regenerate_needs_confirmation(logged_in, user):
    app = make_app(user)
    confirm = logged_in.get(f"/applications/{app.application.pk}/regenerate/")
    assert "stop working" in confirm.content.decode()
    old_hash = app.application.oauth_application.client_secret
    response = logged_in.post(f"/applications/{app.application.pk}/regenerate/")
    assert 'data-testid="issued-secret"' in response.content.decode()
    app.application.oauth_application.refresh_from_db()
    assert app.application.oauth_application.client_secret != old_hash


def test_delete_needs_confirmation(logged_in, user):
    app = make_app(user)
    confirm = logged_in.get(f"/applications/{app.application.pk}/delete/").content.decode()
    assert "cannot be undone" in confirm
    assert Application.objects.filter(deleted_at__isnull=True).count() == 1
    response = logged_in.post(f"/applications/{app.application.pk}/delete/", follow=True)
    assert "deleted" in response.content.decode()
    assert Application.objects.filter(deleted_at__isnull=True).count() == 0
    assert logged_in.get(f"/applications/{app.application.pk}/").status_code == 404


def test_other_users_applications_are_404(logged_in):
    theirs = make_app(make_user("trudy@example.com"))
    pk = theirs.application.pk
    assert logged_in.get(f"/applications/{pk}/").status_code == 404
    assert logged_in.post(f"/applications/{pk}/delete/").status_code == 404
    assert logged_in.post(f"/applications/{pk}/regenerate/").status_code == 404
    assert Application.objects.filter(pk=pk, deleted_at__isnull=True).exists()


def test_subscribe_shows_the_endpoint_and_unsubscribe_confirms(logged_in, user, sum_service):
    app = make_app(user)
    detail = f"/applications/{app.application.pk}/"
    html = logged_in.get(detail).content.decode()
    assert "Not subscribed to any service yet" in html
    assert f'value="{sum_service.plan.pk}"' in html
    response = logged_in.post(f"{detail}subscribe/", {"plan": sum_service.plan.pk}, follow=True)
    html = response.content.decode()
    assert "Subscribed to" in html
    assert f"http://testserver{sum_service.path}" in html
    subscription = Subscription.objects.get(application=app.application)
    unsubscribe = f"{detail}subscriptions/{subscription.pk}/unsubscribe/"
    assert "can no longer call" in logged_in.get(unsubscribe).content.decode()
    logged_in.post(unsubscribe)
    subscription.refresh_from_db()
    assert subscription.ended_at is not None


def test_subscribe_errors_are_messages(logged_in, user, provider, sum_service):
    app = make_app(user)
    subscribe(app, sum_service)
    detail = f"/applications/{app.application.pk}/"
    html = logged_in.post(f"{detail}subscribe/", {"plan": sum_service.plan.pk}, follow=True).content.decode()
    assert "already subscribed" in html
    html = logged_in.post(f"{detail}subscribe/", {"plan": "999999"}, follow=True).content.decode()
    assert "Choose a service" in html
    paid = make_service(provider, name="paid", sample=None, plan_kind="MONTHLY", price_cents=900)
    html = logged_in.post(f"{detail}subscribe/", {"plan": paid.plan.pk}, follow=True).content.decode()
    assert "add a valid card" in html
    assert Subscription.objects.filter(application=app.application).count() == 1


def test_nothing_to_subscribe_to_says_where_to_go(logged_in, user):
    app = make_app(user)
    html = logged_in.get(f"/applications/{app.application.pk}/").content.decode()
    assert "No services can be subscribed to yet" in html


def test_confirmation_pages_cancel_back_to_the_application(logged_in, user):
    app = make_app(user)
    detail = f"/applications/{app.application.pk}/"
    for action in ("delete/", "regenerate/"):
        html = logged_in.get(f"{detail}{action}").content.decode()
        assert f'href="{detail}"' in html
