"""Sharing with an unknown e-mail address looks exactly like sharing with a registered one."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from datapools import services
from datapools.models import DataPoolShare
from tests.conftest import PASSWORD, api_client_for, make_user

pytestmark = pytest.mark.django_db
BASE = "/api/v1/datapools/"


def _shape(body: dict) -> dict:
    return {key: type(value).__name__ for key, value in body.items()}


def test_the_owner_cannot_tell_a_registered_address_from_an_unknown_one(user, client):
    make_user("known@example.com")
    api = api_client_for(user)
    pool = api.post(BASE, {"name": "inputs"}, format="json").json()
    known = api.post(f"{BASE}{pool['id']}/shares/", {"email": "known@example.com"}, format="json")
    unknown = api.post(f"{BASE}{pool['id']}/shares/", {"email": "Unknown@Example.com"}, format="json")
    assert known.status_code == unknown.status_code == 201
    assert _shape(known.json()) == _shape(unknown.json())
    assert (known.json()["email"], unknown.json()["email"]) == ("known@example.com", "unknown@example.com")
    listing = api.get(f"{BASE}{pool['id']}/shares/").json()
    assert [_shape(s) for s in listing] == [_shape(known.json())] * 2
    assert [s["email"] for s in listing] == ["known@example.com", "unknown@example.com"]

    # The page says the same for both.
    client.force_login(user)
    for email in ("known@example.com", "unknown2@example.com"):
        response = client.post(f"/datapools/{pool['id']}/sharing/", {"email": email, "permission": "READ"}, follow=True)
        assert f"Shared with {email} (read)." in response.content.decode()

    # Sharing again changes the permission of the one invitation; removing it works like a share.
    again = api.post(
        f"{BASE}{pool['id']}/shares/", {"email": "unknown@example.com", "permission": "WRITE"}, format="json"
    )
    assert (again.json()["id"], again.json()["permission"]) == (unknown.json()["id"], "WRITE")
    assert api.delete(f"{BASE}{pool['id']}/shares/{unknown.json()['id']}/").status_code == 204
    assert not DataPoolShare.objects.filter(email="unknown@example.com").exists()


def _sign_up(client, email: str) -> None:
    response = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302, response.content.decode()


def test_the_invited_person_gets_access_once_they_confirm_the_address(
    user, client, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_RATE_LIMITS = False  # one confirmation mail per address and 3 minutes, across runs
    pool = services.datapool_create(user=user, name="Shared inputs")
    services.datafile_create_from_json(user=user, pool=pool, name="data", payload={"values": [1]})
    services.datapool_share(user=user, pool=pool, email="newcomer@example.com", permission="WRITE")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        _sign_up(client, "NewComer@example.com")
    newcomer_page = client.get("/datapools/").content.decode()
    # Not yet: anyone can type any address at sign-up; the pool is only named once it is proven.
    assert "Shared inputs" not in newcomer_page
    assert client.get(f"/datapools/{pool.pk}/").status_code == 404
    assert "1 data pool was shared with your e-mail address" in newcomer_page

    assert mail.outbox, "no confirmation e-mail"
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    path = link.split("testserver", 1)[-1]
    assert client.post(path).status_code == 302
    assert "Shared inputs" in client.get("/datapools/?show=shared").content.decode()
    share = DataPoolShare.objects.get(pool=pool)
    assert (share.user.email, share.permission) == ("newcomer@example.com", "WRITE")
    assert "was shared with your e-mail address" not in client.get("/datapools/").content.decode()


def test_an_invitation_to_someone_who_has_the_pool_already_keeps_the_higher_permission(user, other_user):
    pool = services.datapool_create(user=user, name="p")
    services.datapool_share(user=user, pool=pool, email=other_user.email, permission="READ")
    DataPoolShare.objects.create(pool=pool, user=None, email="second@example.com", permission="WRITE")
    assert services.datapool_invitations_accept(user=other_user, email="second@example.com") == 0
    assert list(DataPoolShare.objects.values_list("user__email", "permission")) == [(other_user.email, "WRITE")]
