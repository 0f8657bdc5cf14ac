"""``skip_example_run`` is a boolean in a JSON body (0, "true" and "yes" are refused there, with
nothing created), and keeps its text spellings in a multipart body, which has only text."""

from __future__ import annotations

import pytest

from services.models import Service
from tests.services.test_api import create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", [0, 1, "true", "yes", [], {}])
def test_a_json_body_takes_only_a_boolean(api_client, value) -> None:
    body = {"name": "remote", "external_url": "https://quantum.example.org/svc/", "skip_example_run": value}
    response = api_client.post("/api/v1/services/", body, format="json")
    assert response.status_code == 400, response.json()
    assert "skip_example_run" in str(response.json())
    assert not Service.objects.filter(name="remote").exists()


def test_a_json_boolean_is_taken(api_client) -> None:
    body = {"name": "remote", "external_url": "https://quantum.example.org/svc/", "skip_example_run": True}
    response = api_client.post("/api/v1/services/", body, format="json")
    assert response.status_code == 201, response.json()
    assert Service.objects.get(pk=response.json()["id"]).skip_example_run is True


@pytest.mark.parametrize(("text", "stored"), [("true", True), ("false", False), ("on", True)])
def test_multipart_keeps_the_text_spellings(api_client, text: str, stored: bool) -> None:
    response = create(api_client, name=f"skip-{text}", skip_example_run=text)
    assert response.status_code == 201, response.json()
    assert Service.objects.get(pk=response.json()["id"]).skip_example_run is stored
