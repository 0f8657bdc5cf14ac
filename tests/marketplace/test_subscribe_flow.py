"""Subscribing from a service page has no dead ends: a new application inline, a card on the way
(and back), the price to confirm, then copy-ready curl and Python with the example body."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from applications.models import Application, Subscription
from applications.services import application_create
from services.models import PlanKind
from tests.conftest import make_user
from tests.payments.helpers import make_plan, make_service

pytestmark = pytest.mark.django_db

EXAMPLE_SPEC = """openapi: 3.0.3
info: {title: Sum, version: "1.0"}
paths:
  /:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object}
            example: {data: {values: [1, 2, 3]}, params: {round_off: false}}
      responses:
        "201": {description: The job}
"""


@pytest.fixture
def paid_service(db):
    provider = make_user("provider@example.com")
    service = make_service(provider, "sum", api_spec=EXAMPLE_SPEC)
    return service, make_plan(service, PlanKind.PER_EXECUTION, 25, name="Pay as you go")


def test_a_new_subscriber_creates_the_application_inline_adds_a_card_and_comes_back(client, user, paid_service):
    service, plan = paid_service
    client.force_login(user)
    page = client.get(f"/marketplace/{service.pk}/").content.decode()
    assert "A new application…" in page
    assert "then come back here" not in page

    url = f"/marketplace/{service.pk}/subscribe/"
    response = client.post(url, {"step": "review", "application": "", "new_application": "lab", "plan": plan.pk})
    html = response.content.decode()
    assert 'data-testid="subscribe-card"' in html
    link = html.split('data-testid="add-card-link"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    back = parse_qs(urlparse(link).query)["next"][0]
    assert back.startswith(url)

    # Settings → Payments with next= saves the card and sends the subscriber back with the choices kept.
    added = client.post(link, {"number": "4242 4242 4242 4242", "expiry": "12/40", "cvc": "123", "next": back})
    assert added.status_code == 302
    assert added["Location"] == back
    review = client.get(back).content.decode()
    assert 'data-testid="subscribe-review"' in review
    assert "0.25 EUR per execution" in review
    assert not Application.objects.exists()

    done = client.post(url, {"step": "confirm", "application": "", "new_application": "lab", "plan": plan.pk})
    html = done.content.decode()
    assert done.status_code == 200
    application = Application.objects.get(owner=user, name="lab")
    subscription = Subscription.objects.get(application=application)
    assert (subscription.plan_kind, subscription.price_cents) == ("PER_EXECUTION", 25)
    assert 'data-testid="consumer-secret"' in html
    assert "grant_type=client_credentials" in html
    assert "Authorization: Basic " in html
    assert (
        "{&quot;data&quot;: {&quot;values&quot;: [1, 2, 3]}, &quot;params&quot;: {&quot;round_off&quot;: false}}"
        in html
    )
    assert f"/gateway/{service.owner.uuid}/sum/1.0.0/" in html
    assert "start_execution(data={&#x27;values&#x27;: [1, 2, 3]}" in html


def test_an_existing_application_on_a_free_plan_skips_the_card(client, user, paid_service):
    service, _ = paid_service
    free = make_plan(service, PlanKind.FREE, 0, name="Free")
    lab = application_create(owner=user, name="lab").application
    client.force_login(user)
    url = f"/marketplace/{service.pk}/subscribe/"
    review = client.post(url, {"step": "review", "application": str(lab.pk), "plan": free.pk}).content.decode()
    assert 'data-testid="subscribe-review"' in review
    html = client.post(url, {"step": "confirm", "application": str(lab.pk), "plan": free.pk}).content.decode()
    assert 'data-testid="subscribe-done"' in html
    assert 'data-testid="consumer-secret"' not in html  # an existing application's secret is never shown again
    assert f"-u &quot;{lab.consumer_key}:$CONSUMER_SECRET&quot;" in html
    assert Subscription.objects.get(application=lab).plan == free


def test_errors_stay_on_their_fields(client, user, paid_service):
    service, plan = paid_service
    application_create(owner=user, name="lab")
    client.force_login(user)
    url = f"/marketplace/{service.pk}/subscribe/"
    response = client.post(url, {"step": "review", "application": "", "new_application": "", "plan": plan.pk})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_new_application-errors id_new_application-help"' in html or (
        'aria-describedby="id_new_application-help id_new_application-errors"' in html
    )
    assert not Subscription.objects.exists()
