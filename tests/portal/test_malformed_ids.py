"""Every page route, given malformed ids in its path and query, answers without a 500."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import PASSWORD

MALFORMED = ["not-a-uuid", "0", "-1", "%00", "..", "9" * 30, "00000000-0000-0000-0000-000000000000"]
QUERIES = ["from", "service", "version", "pool", "source", "file", "page", "job", "data_source", "plan", "q"]
# The Stripe webhook answers 503 on purpose while Stripe is not configured.
SKIP = ("gateway/", "api/v1/", "admin/", "accounts/", "static/", "media/", "settings/payments/webhooks/")


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    found: list[str] = []
    for entry in resolver.url_patterns:
        pattern = prefix + str(entry.pattern).lstrip("^").rstrip("$")
        if pattern.startswith(SKIP):
            continue
        if isinstance(entry, URLResolver):
            found += _routes(entry, pattern)
        elif isinstance(entry, URLPattern):
            found.append(pattern)
    return found


def _fill(route: str, value: str) -> str:
    return "/" + re.sub(r"<(?:[a-z_]+:)?[a-z_]+>", value, route)


@pytest.mark.django_db
def test_malformed_ids_in_every_page_route_are_not_a_server_error(user):
    client = Client(raise_request_exception=False)
    assert client.login(email=user.email, password=PASSWORD)
    routes = _routes(get_resolver())
    assert len(routes) > 20
    failures = []
    for route in routes:
        for value in MALFORMED:
            path = _fill(route, value)
            requests = [("GET", path + "?" + "&".join(f"{name}={value}" for name in QUERIES)), ("POST", path)]
            requests += [("GET", f"{path}?{name}={value}") for name in QUERIES] if "<" not in route else []
            for method, url in requests:
                response = client.get(url) if method == "GET" else client.post(url)
                if response.status_code >= 500:
                    failures.append(f"{method} {url}: {response.status_code}")
    assert failures == []
