"""The 403, 404 and 500 pages are the portal's own, and tell nothing about the server."""

import pytest
from django.test import Client, override_settings


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.portal.error_urls", DEBUG=False)
@pytest.mark.parametrize(
    ("path", "status", "title"),
    [
        ("/test-crash/", 500, "Something went wrong"),
        ("/test-forbidden/", 403, "Not allowed"),
        ("/nope/", 404, "Not found"),
    ],
)
def test_error_pages_are_styled_and_silent(path, status, title):
    response = Client(raise_request_exception=False).get(path)
    assert response.status_code == status
    body = response.content.decode()
    assert title in body
    assert 'class="topbar"' in body
    assert "/static/css/app" in body
    assert "secret" not in body
    assert "Traceback" not in body
