"""Each marketplace card offers Try it: a link to the service page's Try it, where the example
input that will run is shown before anything runs (a card does not parse specs)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.applications.conftest import make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_every_card_links_to_its_try_it(user):
    provider = make_user("provider@example.com")
    first = make_service(provider, name="first", sample=None)
    second = make_service(provider, name="second", sample=None)
    client = Client()
    client.force_login(user)
    page = client.get("/marketplace/").content.decode()
    links = re.findall(r'<a href="([^"]+)"[^>]*data-testid="card-try-it"[^>]*>Try it</a>', page)
    assert sorted(links) == sorted(f"/marketplace/{t.service.pk}/#try" for t in (first, second))
    detail = client.get(f"/marketplace/{first.service.pk}/").content.decode()
    assert 'id="try"' in detail
