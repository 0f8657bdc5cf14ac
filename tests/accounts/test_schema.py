"""The OpenAPI schema generates without warnings and is served with an offline Swagger UI."""

import pytest
from django.core.management import call_command


def test_schema_generates_without_warnings(db, tmp_path):
    # --fail-on-warn turns every drf-spectacular warning into a failure.
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))
    text = out.read_text()
    assert "openapi: 3" in text
    assert "/api/v1/me" in text


@pytest.mark.django_db
def test_schema_and_swagger_ui_are_served_without_cdn(client):
    assert client.get("/api/v1/schema/").status_code == 200
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
