"""Pages of the portal shell and the settings area, through Django's test client."""

import pytest

from accounts.models import PersonalAccessToken, ProviderToken

pytestmark = pytest.mark.django_db


def test_home_links_every_section(client):
    html = client.get("/").content.decode()
    for label in ("My Services", "Marketplace", "Applications", "Jobs", "Data Pools"):
        assert label in html
    assert "htmx.min.js" in html
    assert "//cdn" not in html
    assert "unpkg" not in html


def test_settings_need_login(client):
    response = client.get("/settings/tokens/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_token_page_creates_and_revokes_with_confirmation(client, user):
    client.force_login(user)
    response = client.post("/settings/tokens/", {"name": "laptop", "scopes": ["api"], "expires_days": "30"})
    assert response.status_code == 200
    token = PersonalAccessToken.objects.get(user=user)
    html = response.content.decode()
    assert "shown only this once" in html
    confirm = client.get(f"/settings/tokens/{token.pk}/revoke/")
    assert "Revoke token" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # a GET only asks
    client.post(f"/settings/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_token_form_errors_are_shown(client, user):
    client.force_login(user)
    response = client.post("/settings/tokens/", {"name": "", "scopes": []})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not PersonalAccessToken.objects.exists()


def test_cannot_revoke_someone_elses_token(client, user, other_user):
    from accounts.services import personal_access_token_create

    theirs = personal_access_token_create(user=other_user, name="x", scopes=["api"], expires_days=1).token
    client.force_login(user)
    assert client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404


def test_provider_token_page_masks_the_token(client, user):
    client.force_login(user)
    client.post("/settings/providers/", {"provider": "IBM", "value": "my-ibm-token-ABCD"})
    assert ProviderToken.objects.filter(user=user, provider="IBM").exists()
    html = client.get("/settings/providers/").content.decode()
    assert "my-ibm-token" not in html
    assert "ABCD" in html


def test_provider_token_too_short_is_refused(client, user):
    client.force_login(user)
    response = client.post("/settings/providers/", {"provider": "IBM", "value": "abc"})
    assert "too short" in response.content.decode()
    assert not ProviderToken.objects.exists()


def test_unknown_url_is_a_page_for_people_and_json_for_api(client):
    assert client.get("/no-such-page/").status_code == 404
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
