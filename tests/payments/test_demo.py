"""seed_demo's payments part: the demo account gets the 4242 test card, so it can create services."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from payments.demo import seed_demo
from payments.models import Card
from payments.selectors import user_has_valid_card
from services.models import Service

pytestmark = pytest.mark.django_db


def test_demo_card_is_added_once(user):
    out = io.StringIO()
    seed_demo(user, out)
    seed_demo(user, out)
    assert Card.objects.filter(user=user).count() == 1
    assert user_has_valid_card(user=user)
    assert "4242" in out.getvalue()
    assert "already has a card" in out.getvalue()


def test_manage_py_seed_demo_gives_the_demo_account_a_card_before_its_services(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    call_command("seed_demo", stdout=io.StringIO())
    demo = User.objects.get(email="demo@example.com")
    assert user_has_valid_card(user=demo)
    assert Service.objects.filter(owner=demo).exists()
