"""A provider sets whether an execution may run again on another host after its host is lost
(issue 22's per-service rule), on the service's edit page; before, only the Django admin could."""

from __future__ import annotations

import re

import pytest

from services import services
from services.models import Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(client, user):
    client.force_login(user)
    return client


def test_the_edit_page_sets_retry_on_host_loss(client_for, user, other_user):
    service = services.service_create(owner=user, name="remote", external_url="https://quantum.example.org/x/")
    url = f"/services/{service.pk}/edit/"
    page = client_for.get(url).content.decode()
    box = re.search(r'<input type="checkbox" name="retry_on_host_loss"[^>]*>', page)
    assert box is not None
    assert " checked" in box.group(0)  # on by default
    values = {"title": "", "description": "", "quantum_backend": "NONE", "cpus": "1", "memory_mb": 1024}
    response = client_for.post(url, {**values, "timeout_seconds": 60})  # the box left unticked
    assert response.status_code == 302
    assert Service.objects.get(pk=service.pk).retry_on_host_loss is False
    client_for.post(url, {**values, "timeout_seconds": 60, "retry_on_host_loss": "on"})
    assert Service.objects.get(pk=service.pk).retry_on_host_loss is True

    # Nobody else changes it.
    client_for.logout()
    client_for.force_login(other_user)
    assert client_for.post(url, {**values, "timeout_seconds": 60}).status_code == 404
    assert Service.objects.get(pk=service.pk).retry_on_host_loss is True
