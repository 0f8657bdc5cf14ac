"""The documented minimum of ``cpus`` (0.1) is accepted: MinValueValidator(0.1) compared the
stored Decimal with the float 0.1, which is a little more than a tenth, and refused it."""

from __future__ import annotations

import pytest

from services.models import Service
from tests.services.test_api import create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("cpus", "status"), [("0.1", 201), ("0.09", 400), ("4", 201), ("4.01", 400)])
def test_cpus_bounds_are_the_documented_ones(api_client, cpus: str, status: int) -> None:
    response = create(api_client, name=f"cpus-{cpus.replace('.', '-')}", cpus=cpus)
    assert response.status_code == status, response.json()
    if status == 201:
        assert str(Service.objects.get(pk=response.json()["id"]).cpus) in (cpus, f"{cpus}.00", f"{cpus}0")
