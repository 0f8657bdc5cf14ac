"""Pricing plans: owners manage them; a change applies to new subscriptions only. Subscribing."""

from __future__ import annotations

import pytest

from applications.models import Subscription
from applications.services import application_create
from marketplace import services as plan_services
from payments.testing import add_test_card
from planqk_portal.errors import ApplicationError
from services.models import Lifecycle, PlanKind, PricingPlan
from tests.conftest import make_user
from tests.payments.helpers import make_plan, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(db):
    return make_user("provider@example.com")


@pytest.fixture
def service(provider):
    service = make_service(provider, "grover")
    make_plan(service)
    return service


def terms(**overrides):
    values = {"name": "Pro", "kind": PlanKind.PER_EXECUTION, "price_cents": 50} | overrides
    return plan_services.plan_terms_check(**values)


def test_plan_change_keeps_existing_subscriptions_terms(provider, service, user, other_user):
    plan = plan_services.pricing_plan_create(service=service, actor=provider, terms=terms())
    add_test_card(user)
    app = application_create(owner=user, name="early").application
    from applications.services import subscription_create

    early = subscription_create(application=app, service=service, plan=plan)

    changed = plan_services.pricing_plan_change(
        plan=plan, actor=provider, terms=terms(price_cents=80, requests_per_minute=10)
    )

    plan.refresh_from_db()
    early.refresh_from_db()
    assert not plan.is_active
    assert changed.is_active
    assert changed.pk != plan.pk
    assert (early.plan_id, early.price_cents, early.requests_per_minute) == (plan.pk, 50, 120)
    add_test_card(other_user)
    late_app = application_create(owner=other_user, name="late").application
    with pytest.raises(ApplicationError, match="no longer offered"):
        subscription_create(application=late_app, service=service, plan=plan)
    late = subscription_create(application=late_app, service=service, plan=changed)
    assert (late.price_cents, late.requests_per_minute) == (80, 10)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": " "}, "Give the plan a name"),
        ({"kind": PlanKind.FREE, "price_cents": 100}, "A free plan has no price."),
        ({"price_cents": 0}, "A paid plan costs between"),
        ({"price_cents": -5}, "A paid plan costs between"),
        ({"kind": "LIFETIME"}, "The plan kind must be one of"),
        ({"requests_per_minute": 0}, "Requests per minute must be between"),
        ({"max_concurrent": "many"}, "Concurrent executions must be a whole number."),
    ],
)
def test_bad_plan_terms_get_clear_messages(overrides, message):
    with pytest.raises(ApplicationError) as exc:
        terms(**overrides)
    assert message in exc.value.message


def test_only_the_owner_changes_plans_and_names_are_unique(provider, service, other_user):
    with pytest.raises(ApplicationError) as exc:
        plan_services.pricing_plan_create(service=service, actor=other_user, terms=terms())
    assert exc.value.status == 403
    plan_services.pricing_plan_create(service=service, actor=provider, terms=terms())
    with pytest.raises(ApplicationError, match="already a plan named"):
        plan_services.pricing_plan_create(service=service, actor=provider, terms=terms(name="pro"))


def test_a_published_service_keeps_at_least_one_plan(provider, service):
    [free] = service.plans.all()
    with pytest.raises(ApplicationError, match="at least one plan"):
        plan_services.pricing_plan_retire(plan=free, actor=provider)
    plan_services.pricing_plan_create(service=service, actor=provider, terms=terms())
    plan_services.pricing_plan_retire(plan=free, actor=provider)
    free.refresh_from_db()
    assert not free.is_active


def test_owner_manages_plans_in_the_browser_forms(client, provider, service, other_user):
    url = f"/marketplace/manage/{service.pk}/plans/"
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(provider)
    assert "Manage pricing plans" in client.get(f"/marketplace/{service.pk}/").content.decode()
    assert url in client.get(f"/services/{service.pk}/").content.decode()  # linked from My Services too
    page = client.get(url)
    assert page.status_code == 200

    bad = client.post(url, {"name": "Pro", "kind": "PER_EXECUTION", "price": "", "requests_per_minute": 60,
                            "max_concurrent": 2})  # fmt: skip
    assert bad.status_code == 400
    assert "A paid plan costs between" in bad.content.decode()
    garbage = client.post(url, {"name": "Pro", "kind": "X", "price": "abc", "requests_per_minute": "-1"})
    assert garbage.status_code == 400

    created = client.post(url, {"name": "Pro", "kind": "PER_EXECUTION", "price": "0.75", "requests_per_minute": 60,
                                "max_concurrent": 2})  # fmt: skip
    assert created.status_code == 302
    pro = PricingPlan.objects.get(service=service, name="Pro", is_active=True)
    assert (pro.price_cents, pro.requests_per_minute, pro.max_concurrent) == (75, 60, 2)

    change_url = f"/marketplace/manage/{service.pk}/plans/{pro.pk}/change/"
    assert 'value="0.75"' in client.get(change_url).content.decode()
    changed = client.post(change_url, {"name": "Pro", "kind": "MONTHLY", "price": "19.90", "requests_per_minute": 60,
                                       "max_concurrent": 2})  # fmt: skip
    assert changed.status_code == 302
    assert PricingPlan.objects.get(service=service, name="Pro", is_active=True).price_cents == 1990
    # The old row is retired; changing it again is refused with a message.
    assert (
        client.post(
            change_url, {"name": "Pro", "kind": "FREE", "requests_per_minute": 1, "max_concurrent": 1}
        ).status_code
        == 302
    )

    retire_url = f"/marketplace/manage/{service.pk}/plans/{PricingPlan.objects.get(name='Free').pk}/retire/"
    assert "Retire plan" in client.get(retire_url).content.decode()  # a confirmation first
    client.post(retire_url)
    assert not PricingPlan.objects.get(name="Free").is_active
    assert "2 retired plans without subscriptions are not shown." in client.get(url).content.decode()


def test_subscribing_to_a_paid_plan_without_a_card_links_to_payments(client, provider, user):
    service = make_service(provider, "paid-only")
    paid = make_plan(service, PlanKind.MONTHLY, 990, name="Monthly")
    app = application_create(owner=user, name="lab").application
    client.force_login(user)
    response = client.post(f"/marketplace/{service.pk}/subscribe/", {"application": str(app.pk), "plan": str(paid.pk)})
    assert response.status_code == 402
    html = response.content.decode()
    assert "add a valid card" in html
    assert 'href="/settings/payments/"' in html
    assert not Subscription.objects.exists()

    add_test_card(user)
    response = client.post(f"/marketplace/{service.pk}/subscribe/", {"application": str(app.pk), "plan": str(paid.pk)})
    assert response.status_code == 302
    assert response["Location"] == f"/applications/{app.pk}/"
    subscription = Subscription.objects.get(application=app)
    assert (subscription.plan_kind, subscription.price_cents) == ("MONTHLY", 990)


def test_subscribe_refuses_foreign_applications_and_foreign_plans(client, provider, user, other_user):
    service = make_service(provider, "svc")
    make_plan(service)
    other_service = make_service(provider, "other")
    foreign_plan = make_plan(other_service)
    theirs = application_create(owner=other_user, name="theirs").application
    mine = application_create(owner=user, name="mine").application
    client.force_login(user)
    url = f"/marketplace/{service.pk}/subscribe/"
    assert client.post(url, {"application": str(theirs.pk), "plan": str(service.plans.get().pk)}).status_code == 400
    assert client.post(url, {"application": str(mine.pk), "plan": str(foreign_plan.pk)}).status_code == 400
    assert client.post(url, {"application": "nope", "plan": "1"}).status_code == 400
    assert not Subscription.objects.exists()
    client.logout()
    assert client.post(url, {"application": str(mine.pk)}).status_code == 302  # to the login page


def test_retired_plans_list_subscriptions_that_still_use_them(client, provider, user):
    service = make_service(provider, "svc", lifecycle=Lifecycle.PUBLISHED)
    plan = make_plan(service, PlanKind.PER_EXECUTION, 10, name="Old")
    add_test_card(user)
    from applications.services import subscription_create

    subscription_create(application=application_create(owner=user, name="a").application, service=service, plan=plan)
    plan_services.pricing_plan_change(plan=plan, actor=provider, terms=terms(name="Old", price_cents=20))
    client.force_login(provider)
    html = client.get(f"/marketplace/manage/{service.pk}/plans/").content.decode()
    assert "Retired or changed" in html
    assert html.count('data-testid="retired-plan"') == 1
