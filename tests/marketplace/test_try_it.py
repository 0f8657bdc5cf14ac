"""Try it on a service's marketplace page: the example input the page's curl shows runs as a job of
the logged-in user, through admission (ownership or a subscription decides)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from django.test import Client, RequestFactory

from jobs.models import Job
from tests.applications.conftest import make_app, make_service, subscribe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _service(provider, *, spec: bool = True, **kwargs):
    """A READY sum service (not built: these tests stop at the job page) with the sum sample's spec."""
    from planqk_samples import sample_files

    target = make_service(provider, sample=None, **kwargs)
    if spec:
        target.version.api_spec = sample_files("sum")["openapi-spec.yml"].decode()
        target.version.save()
    return target


def _client(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def _shown_curl_input(target) -> dict:
    """The body of the curl the subscribe flow shows (marketplace.views._call_examples)."""
    from marketplace.views import _call_examples

    call = _call_examples(RequestFactory().get("/"), target.service, target.version)["call_curl"]
    return json.loads(re.search(r"-d '(.*)'$", call).group(1))


@pytest.fixture
def provider():
    return make_user("provider@example.com")


def test_a_subscriber_runs_the_example_and_lands_on_the_job_page(provider, user):
    target = _service(provider)
    subscription = subscribe(make_app(user), target)
    page = _client(user).get(f"/marketplace/{target.service.pk}/").content.decode()
    assert 'data-testid="try-it"' in page
    response = _client(user).post(f"/marketplace/{target.service.pk}/try/", follow=True)
    job = Job.objects.get()
    assert response.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert response.status_code == 200
    assert str(job.pk) in response.content.decode()
    assert (job.owner, job.subscription, job.service_version) == (user, subscription, target.version)
    shown = _shown_curl_input(target)
    assert {"data": job.data, "params": job.params} == shown
    assert shown == {"data": {"values": [100, 50, 200, 70, 0.69]}, "params": {"round_off": False}}


def test_the_owner_runs_it_without_a_subscription(provider):
    target = _service(provider, lifecycle="ACCESSIBLE")  # not listed: the owner's preview has Try it too
    response = _client(provider).post(f"/marketplace/{target.service.pk}/try/")
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert (job.owner, job.subscription) == (provider, None)


def test_a_user_without_a_subscription_is_led_to_the_subscribe_flow(provider, user):
    target = _service(provider)
    response = _client(user).post(f"/marketplace/{target.service.pk}/try/", follow=True)
    assert response.redirect_chain == [(f"/marketplace/{target.service.pk}/subscribe/", 302)]
    assert response.status_code == 200
    html = response.content.decode()
    assert "to try it" in html
    assert 'name="plan"' in html
    assert not Job.objects.exists()


def test_anonymous_visitors_are_asked_to_log_in_and_nothing_runs(provider):
    target = _service(provider)
    page = _client().get(f"/marketplace/{target.service.pk}/").content.decode()
    assert 'data-testid="try-it-login"' in page
    assert 'data-testid="try-it"' not in page
    response = _client().post(f"/marketplace/{target.service.pk}/try/")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=%2Fmarketplace%2F{target.service.pk}%2F"
    assert not Job.objects.exists()


def test_a_service_without_an_example_offers_no_try_it_and_refuses_a_post(provider, user):
    target = _service(provider, spec=False)
    subscribe(make_app(user), target)
    page = _client(user).get(f"/marketplace/{target.service.pk}/").content.decode()
    assert 'data-testid="try-it"' not in page
    assert "gives no example input" in page
    response = _client(user).post(f"/marketplace/{target.service.pk}/try/", follow=True)
    assert response.redirect_chain == [(f"/marketplace/{target.service.pk}/?version=1.0.0#try", 302)]
    assert "nothing to try" in response.content.decode()
    assert not Job.objects.exists()


def test_hostile_requests_make_no_job(provider, user):
    target = _service(provider)
    subscribe(make_app(user), target)
    # No CSRF token: refused.
    forged = _client(user, enforce_csrf_checks=True).post(f"/marketplace/{target.service.pk}/try/")
    assert forged.status_code == 403
    # A GET runs nothing.
    assert _client(user).get(f"/marketplace/{target.service.pk}/try/").status_code == 405
    # Another provider's internal service, and a missing one: the same 404 as any unknown service.
    internal = _service(make_user("other@example.com"), lifecycle="ACCESSIBLE", name="internal")
    for service_id in (internal.service.pk, "00000000-0000-0000-0000-000000000000"):
        assert _client(user).post(f"/marketplace/{service_id}/try/").status_code == 404
    # A version that does not exist falls back to the listed one; it never runs another's version.
    response = _client(user).post(f"/marketplace/{target.service.pk}/try/?version={internal.version.version}x")
    assert response.status_code == 302
    assert list(Job.objects.values_list("service_version", flat=True)) == [target.version.pk]


def test_a_paid_plan_without_a_card_leads_to_adding_one_and_back(provider, user):
    from payments.testing import add_test_card

    target = _service(provider, plan_kind="PER_EXECUTION", price_cents=25)
    card = add_test_card(user)
    subscribe(make_app(user), target)
    card.delete()  # subscribed while the user had a card; it is gone now
    response = _client(user).post(f"/marketplace/{target.service.pk}/try/", follow=True)
    back = f"/marketplace/{target.service.pk}/?version=1.0.0"
    assert response.redirect_chain[0][0] == f"/settings/payments/?{urlencode({'next': back})}"
    assert response.status_code == 200
    assert not Job.objects.exists()
