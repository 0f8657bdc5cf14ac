"""Listing badges (backend, SDK) and "price from" on the marketplace list and a service's page,
from marketplace.badges.listing_badges, the function the publish flow's preview uses too."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from services.models import PlanKind, PricingPlan
from tests.applications.conftest import make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _badges(html: str) -> list[str]:
    return re.findall(r'data-testid="badge-(?:backend|sdk)">([^<]*)<', html)


def _price_from(html: str) -> list[str]:
    return re.findall(r'data-testid="(?:preview-)?price-from">([^<]*)<', html)


def _listed(provider, name: str, *, backend: str = "NONE", requirements: str = "", plans=()):
    target = make_service(provider, name=name, sample=None)
    target.service.quantum_backend = backend
    target.service.save()
    target.version.requirements = requirements
    target.version.save()
    target.plan.delete()
    for kind, cents, active in plans:
        PricingPlan.objects.create(service=target.service, name=f"{kind} {cents}", kind=kind, price_cents=cents,
                                   is_active=active)  # fmt: skip
    return target


def test_list_and_service_page_show_backend_sdk_and_the_cheapest_plan():
    provider = make_user("provider@example.com")
    bell = _listed(
        provider, "bell", backend="IBM", requirements="qiskit==1.2.4  # the SDK\nqiskit-aer>=0.15\n",
        plans=[(PlanKind.PER_EXECUTION, 40, True), (PlanKind.MONTHLY, 900, True), (PlanKind.PER_EXECUTION, 5, False)],
    )  # fmt: skip
    qubo = _listed(
        provider, "qubo", backend="DWAVE", requirements="dwave-ocean-sdk\n",
        plans=[(PlanKind.FREE, 0, True), (PlanKind.PER_EXECUTION, 25, True)],
    )  # fmt: skip
    plain = _listed(provider, "plain", requirements="numpy\n", plans=[])
    expected = [
        (bell, ["IBM", "Qiskit"], ["Price from 0.40 EUR"]),  # the retired 0.05 plan does not count
        (qubo, ["D-Wave", "D-Wave Ocean"], ["Price from Free"]),
        (plain, ["Python"], []),  # no plan: no price, no backend badge for local code
    ]
    listing = Client().get("/marketplace/").content.decode()
    cards = {
        name: card
        for card in listing.split('data-testid="service-card"')[1:]
        for name in ("Bell", "Qubo", "Plain")
        if f"<strong>{name}</strong>" in card
    }
    assert set(cards) == {"Bell", "Qubo", "Plain"}
    for target, badges, price in expected:
        card = cards[target.service.title]
        assert _badges(card) == badges, target.service.name
        assert _price_from(card) == price, target.service.name
        page = Client().get(f"/marketplace/{target.service.pk}/").content.decode()
        head = page.split('data-testid="service-title"', 1)[1].split("</hgroup>", 1)[0]
        assert _badges(head) == badges, target.service.name
        assert _price_from(head) == price, target.service.name
    assert "no plans offered yet" in cards["Plain"]


def test_the_badges_follow_the_listed_version_and_the_list_takes_a_fixed_number_of_queries(
    django_assert_max_num_queries,
):
    from services.models import BuildStatus, ServiceVersion

    provider = make_user("provider@example.com")
    target = _listed(provider, "bell", requirements="numpy\n", plans=[(PlanKind.FREE, 0, True)])
    # A newer callable version with Qiskit; the published one (1.0.0) is what the listing shows.
    ServiceVersion.objects.create(
        service=target.service, version="2.0.0", status=BuildStatus.READY, requirements="qiskit\n"
    )
    page = Client().get(f"/marketplace/{target.service.pk}/").content.decode()
    assert _badges(page.split('data-testid="service-title"', 1)[1].split("</hgroup>", 1)[0]) == ["Python"]
    assert _badges(Client().get("/marketplace/").content.decode()) == ["Python"]
    page = Client().get(f"/marketplace/{target.service.pk}/?version=2.0.0").content.decode()
    assert _badges(page.split('data-testid="service-title"', 1)[1].split("</hgroup>", 1)[0]) == ["Qiskit"]
    for number in range(8):
        _listed(provider, f"more-{number}", requirements="dimod\n", plans=[(PlanKind.MONTHLY, 100 + number, True)])
    with django_assert_max_num_queries(8):  # not one query per card
        html = Client().get("/marketplace/").content.decode()
    assert html.count('data-testid="service-card"') == 9


@pytest.fixture
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_the_publish_preview_shows_what_the_listing_will_show(private_media):
    """The preview, the list and the page come from the same function: the same badges and price."""
    from planqk_samples import sample_zip
    from services import services
    from services.models import BuildStatus
    from tests.services.conftest import make_provider
    from tests.services.helpers import upload

    provider = make_provider()
    service = services.service_create(owner=provider, name="bell", archive=upload(sample_zip("qiskit_bell")))
    service.quantum_backend = "IBM"  # set here: creating it so would need the owner's IBM token
    service.save()
    version = service.versions.get()
    version.status = BuildStatus.READY
    version.save(update_fields=["status"])
    owner = Client()
    owner.force_login(provider)
    choices = {
        "lifecycle": "PUBLISHED",
        "version": str(version.pk),
        "keep_plans": [],
        "new_kind": PlanKind.PER_EXECUTION,
        "new_name": "Basic",
        "new_price": "0.25",
        "new_rpm": 60,
        "new_concurrency": 2,
    }
    url = f"/services/{service.pk}/publish/flow/"
    preview = owner.post(url, {**choices, "step": "preview"}).content.decode()
    preview = preview.split('data-testid="listing-preview"', 1)[1].split("</article>", 1)[0]
    assert owner.post(url, {**choices, "step": "confirm"}).status_code == 302
    listing = Client().get("/marketplace/").content.decode()
    page = Client().get(f"/marketplace/{service.pk}/").content.decode()
    page = page.split('data-testid="service-title"', 1)[1].split("</hgroup>", 1)[0]
    assert _badges(preview) == _badges(listing) == _badges(page) == ["IBM", "Qiskit"]
    assert _price_from(preview) == _price_from(listing) == _price_from(page) == ["Price from 0.25 EUR"]
