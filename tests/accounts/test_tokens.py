"""Personal access tokens against the REST API, the createtoken command and provider tokens."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import selectors, services
from accounts.crypto import hash_secret
from accounts.models import PersonalAccessToken, ProviderToken
from planqk_portal.errors import ApplicationError
from tests.conftest import token_for

pytestmark = pytest.mark.django_db


def test_me_with_bearer_token(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"
    assert response.json()["context_id"] == str(user.uuid)


def test_me_with_x_auth_token_header(user):
    response = APIClient().get("/api/v1/me", HTTP_X_AUTH_TOKEN=token_for(user))
    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_me_without_token_is_401_json():
    response = APIClient().get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "WWW-Authenticate" in response


def test_token_is_stored_hashed_and_shown_once(user):
    issued = services.personal_access_token_create(user=user, name="cli", scopes=["api"], expires_days=30)
    row = PersonalAccessToken.objects.get(pk=issued.token.pk)
    assert issued.secret.startswith("pqk_")
    assert row.token_hash == hash_secret(issued.secret)
    assert issued.secret not in {row.token_hash, row.prefix, row.name}
    assert row.prefix == issued.secret[:10]


def test_revoked_token_gets_401(user):
    issued = services.personal_access_token_create(user=user, name="cli", scopes=["api"], expires_days=30)
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert client.get("/api/v1/me").status_code == 200
    services.personal_access_token_revoke(user=user, token_id=issued.token.pk)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_expired_token_gets_401(user):
    issued = services.personal_access_token_create(user=user, name="cli", scopes=["api"], expires_days=1)
    PersonalAccessToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 401


def test_last_use_is_recorded(user):
    issued = services.personal_access_token_create(user=user, name="cli", scopes=["api"], expires_days=None)
    assert issued.token.last_used_at is None
    APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


def test_read_scope_cannot_write(user):
    secret = token_for(user, scopes=["read"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/api/v1/me", {}).status_code == 403


def test_garbage_tokens_are_401_not_500(user):
    for header in ("Bearer", "Bearer a b", "Bearer pqk_" + "x" * 500, "Bearer pqk_\u00e9\u00e9"):
        response = APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


@pytest.mark.parametrize(
    ("name", "scopes", "days", "code"),
    [
        ("", ["api"], 30, "token:name-required"),
        ("x", [], 30, "token:scope-required"),
        ("x", ["admin"], 30, "token:unknown-scope"),
        ("x", ["api"], 0, "token:bad-expiry"),
        ("x", ["api"], 9999, "token:bad-expiry"),
    ],
)
def test_bad_token_requests_are_refused_with_a_reason(user, name, scopes, days, code):
    with pytest.raises(ApplicationError) as info:
        services.personal_access_token_create(user=user, name=name, scopes=scopes, expires_days=days)
    assert info.value.code == code


def test_createtoken_command_prints_a_working_token(user, capsys):
    call_command("createtoken", "ALICE@example.com", "--name", "ops", "--expires-days", "7")
    secret = capsys.readouterr().out.strip()
    response = APIClient().get("/api/v1/me", HTTP_X_AUTH_TOKEN=secret)
    assert response.status_code == 200
    token = PersonalAccessToken.objects.get(user=user)
    assert token.name == "ops"
    assert token.expires_at is not None


def test_createtoken_for_unknown_account_fails_clearly(db):
    with pytest.raises(CommandError, match="No account"):
        call_command("createtoken", "nobody@example.com")


def test_provider_token_row_holds_no_clear_text(user):
    secret = "ibm-token-very-secret-0123456789"
    services.provider_token_set(user=user, provider="IBM", value=secret)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext, last4 FROM accounts_providertoken")
        ciphertext, last4 = cursor.fetchone()
    raw = bytes(ciphertext)
    assert secret.encode() not in raw
    assert b"very-secret" not in raw
    assert last4 == "6789"
    assert selectors.provider_token_value(user=user, provider="IBM") == secret


def test_provider_token_replace_and_delete(user):
    services.provider_token_set(user=user, provider="DWAVE", value="first-token-1111")
    services.provider_token_set(user=user, provider="DWAVE", value="second-token-2222")
    assert ProviderToken.objects.filter(user=user).count() == 1
    assert selectors.provider_token_value(user=user, provider="DWAVE") == "second-token-2222"
    services.provider_token_delete(user=user, provider="DWAVE")
    assert selectors.provider_token_value(user=user, provider="DWAVE") is None


def test_provider_tokens_are_private_to_their_owner(user, other_user):
    services.provider_token_set(user=user, provider="IBM", value="alice-ibm-token")
    assert selectors.provider_token_value(user=other_user, provider="IBM") is None
