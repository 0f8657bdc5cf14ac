"""Login throttling: an attacker's wrong passwords slow the attacker, never lock the owner out,
and the admin login is the same throttled login."""

from __future__ import annotations

import random
import uuid

import pytest
from django.test import Client

from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _address() -> str:
    # Counters live in the shared cache: every test uses addresses of its own.
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _login(address: str, email: str, password: str) -> Client:
    client = Client(REMOTE_ADDR=address)
    client.response = client.post("/accounts/login/", {"login": email, "password": password})
    return client


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_ten_wrong_passwords_from_one_address_do_not_lock_the_owner_out():
    owner = make_user(f"owner-{uuid.uuid4().hex[:8]}@example.com")
    attacker = _address()
    for _ in range(10):
        assert not _logged_in(_login(attacker, owner.email, "wrong-password-123"))
    # The attacker is slowed down: now even the right password is refused from that address.
    blocked = _login(attacker, owner.email, PASSWORD)
    assert not _logged_in(blocked)
    assert b"Too many failed login attempts" in blocked.response.content
    # The owner, from anywhere else, logs in at once.
    assert _logged_in(_login(_address(), owner.email, PASSWORD))


def test_a_colleague_behind_the_same_address_is_not_blocked():
    victim = make_user(f"victim-{uuid.uuid4().hex[:8]}@example.com")
    colleague = make_user(f"colleague-{uuid.uuid4().hex[:8]}@example.com")
    office = _address()
    for _ in range(10):
        _login(office, victim.email, "wrong-password-123")
    assert _logged_in(_login(office, colleague.email, PASSWORD))


def test_failures_are_counted_and_stop_guessing():
    owner = make_user(f"guessed-{uuid.uuid4().hex[:8]}@example.com")
    attacker = _address()
    refused = 0
    for _ in range(8):
        response = _login(attacker, owner.email, "wrong-password-123").response
        refused += b"Too many failed login attempts" in response.content
    assert refused >= 3  # the 6th attempt in a minute and later are not even checked


def test_admin_login_is_the_throttled_portal_login():
    staff = make_user(f"staff-{uuid.uuid4().hex[:8]}@example.com")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = Client(REMOTE_ADDR=_address())
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    # A password posted to the admin's own form authenticates nobody.
    response = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert response.status_code == 302
    assert not _logged_in(client)
    attacker = _address()
    for _ in range(10):
        Client(REMOTE_ADDR=attacker).post("/admin/login/", {"username": staff.email, "password": "wrong-123"})
    assert _logged_in(_login(_address(), staff.email, PASSWORD))
    assert Client(REMOTE_ADDR=attacker).get("/admin/").status_code == 302


@pytest.fixture
def proxied_server(django_db_blocker):
    """The production server behind one (pretend) proxy: the client address is X-Forwarded-For."""
    from tests.conftest import start_production_server

    with django_db_blocker.unblock():
        server = start_production_server({"ALLAUTH_TRUSTED_PROXY_COUNT": "1"})
    yield server
    server.stop()


def _form_login(server, address: str, email: str, password: str) -> bool:
    import requests

    session = requests.Session()
    session.headers["X-Forwarded-For"] = address
    page = session.get(f"{server.url}/accounts/login/", timeout=15)
    token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    response = session.post(
        f"{server.url}/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        # The cookie is Secure; requests keeps it from plain HTTP, a browser on loopback does not.
        headers={"Cookie": f"csrftoken={page.cookies['csrftoken']}"},
        timeout=15,
        allow_redirects=False,
    )
    return response.status_code == 302 and "sessionid" in response.cookies


@pytest.mark.django_db(transaction=True)
def test_on_the_production_server_the_owner_logs_in_during_an_attack(proxied_server):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    owner = make_user(f"attacked-{uuid.uuid4().hex[:8]}@example.com")
    # Tests hash with MD5; the production server knows only the production hashers.
    owner.password = PBKDF2PasswordHasher().encode(PASSWORD, uuid.uuid4().hex)
    owner.save(update_fields=["password"])
    attacker = _address()
    assert not any(_form_login(proxied_server, attacker, owner.email, f"wrong-{n}") for n in range(10))
    assert not _form_login(proxied_server, attacker, owner.email, PASSWORD)  # slowed down
    assert _form_login(proxied_server, _address(), owner.email, PASSWORD)
