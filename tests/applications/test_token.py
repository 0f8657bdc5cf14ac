"""The token endpoint: client credentials only, RFC 6749 answers, fast hashed secrets."""

import base64

import pytest
from django.contrib.auth.hashers import identify_hasher
from oauth2_provider.models import AccessToken

from applications.services import application_delete, application_regenerate_secret
from tests.applications.conftest import fetch_token, make_app

pytestmark = pytest.mark.django_db


def _post(client, basic: str | None, **data):
    headers = {"HTTP_AUTHORIZATION": f"Basic {basic}"} if basic else {}
    return client.post("/gateway/token", data or {"grant_type": "client_credentials"}, **headers)


def test_client_credentials_give_a_bearer_token_for_an_hour(client, app):
    response = _post(client, app.basic)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope", "token_type", "expires_in"}
    assert body["scope"] == "default"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"].startswith("application/json")
    assert len(body["access_token"]) >= 20
    # Stored only as a checksum, never in clear text.
    token = AccessToken.objects.get(application=app.application.oauth_application)
    assert body["access_token"] not in (token.token or "")


def test_the_secret_is_stored_with_the_fast_salted_hasher(app):
    stored = app.application.oauth_application.client_secret
    assert app.secret not in stored
    assert identify_hasher(stored).algorithm == "consumer_sha256"


def test_wrong_secret_is_invalid_client_401_with_www_authenticate(client, app):
    wrong = base64.b64encode(f"{app.key}:not-the-secret".encode()).decode()
    response = _post(client, wrong)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.has_header("WWW-Authenticate")
    assert response["Cache-Control"] == "no-store"


def test_unknown_key_and_missing_credentials_are_invalid_client(client):
    unknown = base64.b64encode(b"nobody:nothing").decode()
    assert _post(client, unknown).status_code == 401
    response = _post(client, None)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_password_grant_is_unsupported_grant_type(client, app, user):
    response = _post(client, app.basic, grant_type="password", username=user.email, password="whatever")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_missing_grant_type_is_invalid_request(client, app):
    response = client.post("/gateway/token", {"scope": "default"}, HTTP_AUTHORIZATION=f"Basic {app.basic}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_get_is_a_json_405(client):
    response = client.get("/gateway/token")
    assert response.status_code == 405
    assert response.json()["code"] == "invalid_request"


def test_token_endpoint_needs_no_csrf_token(app):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert _post(strict, app.basic).status_code == 200


def test_secret_in_the_form_body_works_too(client, app):
    response = client.post(
        "/gateway/token", {"grant_type": "client_credentials", "client_id": app.key, "client_secret": app.secret}
    )
    assert response.status_code == 200


def test_regenerated_secret_replaces_the_old_one_and_revokes_tokens(client, app):
    token = fetch_token(client, app)
    issued = application_regenerate_secret(application=app.application)
    assert issued.secret != app.secret
    old = base64.b64encode(f"{app.key}:{app.secret}".encode()).decode()
    assert _post(client, old).status_code == 401
    assert token
    assert not AccessToken.objects.filter(application=app.application.oauth_application).exists()
    assert _post(client, issued.basic_auth).status_code == 200


def test_deleted_application_gets_no_token(client, app):
    application_delete(application=app.application)
    assert _post(client, app.basic).status_code == 401


def test_secret_hash_is_one_salted_sha256_round(app):
    # One SHA-256 over salt + secret: no key stretching, so a token request costs microseconds of
    # hashing where PBKDF2's million iterations would cost about a second of CPU.
    import hashlib

    algorithm, salt, digest = app.application.oauth_application.client_secret.split("$")
    assert algorithm == "consumer_sha256"
    assert len(salt) >= 12
    assert digest == hashlib.sha256((salt + app.secret).encode()).hexdigest()


def test_user_passwords_keep_the_default_hasher(user):
    from django.contrib.auth.hashers import get_hasher

    assert get_hasher("default").algorithm != "consumer_sha256"
    assert identify_hasher(user.password).algorithm != "consumer_sha256"


def test_two_applications_get_distinct_keys(user):
    first, second = make_app(user, "one"), make_app(user, "two")
    assert first.key != second.key
    assert first.secret != second.secret
