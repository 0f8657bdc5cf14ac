"""seed_demo creates the sample services once and publishes the sum service when it is built."""

from __future__ import annotations

import io

import pytest

from services import builds
from services.demo import DEMO_SERVICES, seed_demo
from services.models import BuildStatus, Lifecycle, Service

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


def test_seed_demo_is_idempotent_and_publishes_its_samples_with_plans_once_ready(user):
    out = io.StringIO()
    seed_demo(user, out)
    names = set(Service.objects.filter(owner=user).values_list("name", flat=True))
    assert names == set(DEMO_SERVICES.values())
    ids = set(Service.objects.values_list("id", flat=True))
    seed_demo(user, out)
    assert set(Service.objects.values_list("id", flat=True)) == ids  # nothing created twice

    total = Service.objects.get(owner=user, name="sum")
    assert total.lifecycle == Lifecycle.CREATED
    assert total.publish_on_ready == Lifecycle.PUBLISHED
    for name in ("sum", "qiskit-bell", "dwave-qubo"):
        assert Service.objects.get(owner=user, name=name).publish_on_ready == Lifecycle.PUBLISHED
    assert sorted(total.plans.values_list("name", "kind", "price_cents")) == [
        ("Free", "FREE", 0),
        ("Pay as you go", "PER_EXECUTION", 5),
    ]
    # Without provider tokens the quantum samples run on their local simulators.
    assert Service.objects.get(owner=user, name="qiskit-bell").quantum_backend == "NONE"

    # The build (in this process, on the local runtime) publishes it when READY.
    version = builds.service_version_build(version_id=total.versions.get().pk)
    assert version.status == BuildStatus.READY
    total.refresh_from_db()
    assert total.lifecycle == Lifecycle.PUBLISHED
    assert total.publish_on_ready == ""
    assert total.published_version == version
    assert "sum: created" in out.getvalue()
