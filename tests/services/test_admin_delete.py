"""The Django admin cannot delete services or versions: only ``service_delete`` may (it refuses
while applications are subscribed, keeps billing history and removes builds on every host)."""

from __future__ import annotations

import pytest

from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_a_superuser_cannot_delete_a_service_or_version_in_the_admin(client):
    from payments.testing import add_test_card
    from services import services
    from services.models import Service, ServiceVersion

    owner = make_user("owner@example.com")
    add_test_card(owner)
    service = services.service_create(owner=owner, name="remote", external_url="https://quantum.example.org/x/")
    version = ServiceVersion.objects.get(service=service)
    operator = make_user("operator@example.com")
    operator.is_staff = operator.is_superuser = True
    operator.save()
    client.force_login(operator)

    assert client.get(f"/admin/services/service/{service.pk}/delete/").status_code == 403
    assert client.post(f"/admin/services/service/{service.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/services/serviceversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
    # The list's bulk action is not offered either.
    changelist = client.post(
        "/admin/services/service/", {"action": "delete_selected", "_selected_action": [str(service.pk)], "post": "yes"}
    )
    assert changelist.status_code in (200, 302)
    assert Service.objects.filter(pk=service.pk, deleted_at__isnull=True).exists()
    assert ServiceVersion.objects.filter(pk=version.pk).exists()
