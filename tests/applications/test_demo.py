"""seed_demo's applications part: one demo application, its secret printed once, subscribed to sum."""

import io
import re

import pytest

from applications.demo import DEMO_APPLICATION, seed_demo
from applications.models import Application, Subscription
from tests.applications.conftest import make_service

pytestmark = pytest.mark.django_db


def test_demo_application_is_created_once_and_subscribed(client, user):
    target = make_service(user, name="sum", lifecycle="ACCESSIBLE", sample=None)
    out = io.StringIO()
    seed_demo(user, out)
    text = out.getvalue()
    secret = re.search(r"consumer secret .*: (\S+)", text).group(1)
    application = Application.objects.get(owner=user, name=DEMO_APPLICATION)
    assert application.consumer_key in text
    assert Subscription.objects.filter(application=application, service=target.service, ended_at__isnull=True).exists()
    assert target.path in text
    response = client.post(
        "/gateway/token",
        {"grant_type": "client_credentials", "client_id": application.consumer_key, "client_secret": secret},
    )
    assert response.status_code == 200

    again = io.StringIO()
    seed_demo(user, again)
    assert secret not in again.getvalue()
    assert Application.objects.filter(owner=user, name=DEMO_APPLICATION).count() == 1
    assert Subscription.objects.filter(application=application).count() == 1


def test_demo_subscribes_before_the_sum_service_is_published(user):
    target = make_service(user, name="sum", lifecycle="CREATED", sample=None)
    out = io.StringIO()
    seed_demo(user, out)
    assert Subscription.objects.filter(service=target.service, ended_at__isnull=True).count() == 1


def test_demo_without_a_sum_service_says_so(user):
    out = io.StringIO()
    seed_demo(user, out)
    assert "no demo sum service" in out.getvalue()
    assert Application.objects.filter(owner=user).count() == 1
