"""`planqk up --plan`: the pricing plans of a new service from the command line."""

from __future__ import annotations

import pytest

from planqk_cli.errors import ExitCode, UsageError
from planqk_cli.up import parse_plan
from tests.conftest import token_for


@pytest.fixture
def portal_cli(cli, live_server):
    cli.endpoint = live_server.url
    return cli


def test_plan_texts_become_the_portals_terms():
    assert parse_plan("free") == {"name": "Free", "kind": "FREE", "price_cents": 0}
    assert parse_plan("Per-Execution:25", rpm=60, concurrency=2) == {
        "name": "Per execution",
        "kind": "PER_EXECUTION",
        "price_cents": 25,
        "requests_per_minute": 60,
        "max_concurrent": 2,
    }
    assert parse_plan("monthly:900") == {"name": "Monthly", "kind": "MONTHLY", "price_cents": 900}


@pytest.mark.parametrize("text", ["gold", "monthly", "per-execution:0", "per-execution:1.5", "free:5"])
def test_a_plan_text_that_says_no_price_or_kind_is_a_usage_error(text):
    with pytest.raises(UsageError):
        parse_plan(text)


@pytest.mark.django_db(transaction=True)
def test_up_creates_the_service_with_its_plans(portal_cli, celery_worker, user):
    from services.models import Service

    assert portal_cli("init", "priced").returncode == 0
    folder = portal_cli.cwd / "priced"
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    args = ("--plan", "free", "--plan", "per-execution:25", "--plan", "monthly:900", "--rpm", "60")
    up = portal_cli("up", "--silent", *args, "--concurrency", "2", cwd=folder)
    assert up.returncode == 0, str(up)
    service = Service.objects.get(owner=user, name="priced")
    plans = sorted((p.kind, p.price_cents, p.requests_per_minute, p.max_concurrent) for p in service.plans.all())
    assert plans == [("FREE", 0, 120, 5), ("MONTHLY", 900, 60, 2), ("PER_EXECUTION", 25, 60, 2)]
    # A new version keeps the plans; the flags only apply to a new service.
    again = portal_cli("up", "--silent", "--plan", "monthly:100", cwd=folder)
    assert again.returncode == 0, str(again)
    assert "--plan" in again.stderr
    assert service.plans.count() == 3


@pytest.mark.django_db(transaction=True)
def test_up_shows_the_portals_refusal_of_a_plan_and_a_bad_flag_before_uploading(portal_cli, user):
    from services.models import Service

    assert portal_cli("init", "limits").returncode == 0
    folder = portal_cli.cwd / "limits"
    assert portal_cli("login", "-t", token_for(user)).returncode == 0
    refused = portal_cli("up", "--silent", "--plan", "per-execution:5", "--rpm", "0", cwd=folder)
    assert refused.returncode == ExitCode.REFUSED, str(refused)
    assert "Requests per minute must be between 1 and 10000" in refused.stderr
    bad = portal_cli("up", "--silent", "--plan", "monthly", cwd=folder)
    assert bad.returncode == ExitCode.USAGE, str(bad)
    assert "needs its price in cents" in bad.stderr
    assert not Service.objects.exists()
