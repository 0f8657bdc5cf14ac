"""The publish flow (visibility, default version, plans, preview, confirm) and the service page's live state."""

from __future__ import annotations

import pytest
from django.test import Client

from services import services
from services.models import BuildStatus, Lifecycle, PlanKind
from tests.services.conftest import make_provider

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


@pytest.fixture
def provider():
    return make_provider()


@pytest.fixture
def client_for(provider):
    client = Client()
    client.force_login(provider)
    return client


def _ready_service(provider, **kwargs):
    from planqk_samples import sample_zip

    from .helpers import upload

    service = services.service_create(owner=provider, name="sum", archive=upload(sample_zip("sum")), **kwargs)
    version = service.versions.get()
    version.status = BuildStatus.READY  # as the build leaves it; this test is about the pages
    version.save(update_fields=["status"])
    return service, version


def test_the_flow_previews_then_publishes_with_the_chosen_plans_and_version(client_for, provider):
    service, version = _ready_service(provider)
    url = f"/services/{service.pk}/publish/flow/"
    free = service.plans.get()
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
    html = client_for.post(url, {**choices, "step": "preview"}).content.decode()
    assert 'data-testid="listing-preview"' in html
    assert "Price from 0.25 EUR" in html
    assert "Basic</strong>: 0.25 EUR per execution" in html
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.CREATED  # nothing changes before the confirmation
    response = client_for.post(url, {**choices, "step": "confirm"})
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.PUBLISHED
    assert service.published_version_id == version.pk
    active = [
        (p.name, p.kind, p.price_cents, p.requests_per_minute, p.max_concurrent)
        for p in service.plans.filter(is_active=True)
    ]
    assert active == [("Basic", PlanKind.PER_EXECUTION, 25, 60, 2)]
    free.refresh_from_db()
    assert not free.is_active


def test_the_flow_refuses_no_plan_a_bad_price_and_waits_for_a_ready_version(client_for, provider):
    from planqk_samples import sample_zip

    from .helpers import upload

    building = services.service_create(owner=provider, name="building", archive=upload(sample_zip("sum")))
    html = client_for.get(f"/services/{building.pk}/publish/flow/").content.decode()
    assert 'data-testid="publish-needs-ready"' in html
    service, version = _ready_service(provider)
    url = f"/services/{service.pk}/publish/flow/"
    base = {"lifecycle": "PUBLISHED", "version": str(version.pk), "step": "confirm"}
    html = client_for.post(url, base).content.decode()
    assert "plan:none" in html
    html = client_for.post(url, {**base, "new_kind": PlanKind.MONTHLY, "new_price": ""}).content.decode()
    assert "plan:bad-price" in html
    service.refresh_from_db()
    assert service.lifecycle == Lifecycle.CREATED


def test_the_service_pages_state_polls_until_the_build_is_final(client_for, provider):
    from planqk_samples import sample_zip

    from .helpers import upload

    service = services.service_create(owner=provider, name="sum", archive=upload(sample_zip("sum")))
    state = client_for.get(f"/services/{service.pk}/state/")
    assert state.status_code == 200
    html = state.content.decode()
    assert 'hx-get="/services/' in html
    assert 'data-status="PENDING"' in html
    assert 'aria-disabled="true"' in html
    version = service.versions.get()
    version.status = BuildStatus.READY
    version.save(update_fields=["status"])
    state = client_for.get(f"/services/{service.pk}/state/")
    assert state.status_code == 286
    html = state.content.decode()
    assert "hx-get" not in html
    # The versions table and the build status agree.
    assert 'data-testid="version-row" data-version="1.0.0" data-status="READY"' in html
    assert 'data-testid="build-status" data-status="READY"' in html
    assert f'href="/services/{service.pk}/publish/flow/"' in html
