"""The request counter: exact under concurrency, shared across processes when Redis is configured."""

import os
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import AccessToken

from applications.services import access_token_purge_expired
from jobs.limits import LimitExceeded, check_rate, subscription_rate_key
from tests.applications.conftest import fetch_token

ROOT = Path(__file__).resolve().parents[2]


def _count_allowed(subscription_id: str, limit: int, calls: int, now: float) -> int:
    allowed = 0
    for _ in range(calls):
        try:
            check_rate(key=subscription_rate_key(subscription_id), limit=limit, now=now)
            allowed += 1
        except LimitExceeded:
            pass
    return allowed


def test_threads_of_one_process_never_exceed_the_limit():
    subscription_id = str(uuid.uuid4())
    now = 1_000_000 * 60.0 + 1
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(_count_allowed(subscription_id, 25, 10, now))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 25


def test_a_new_minute_starts_a_new_window():
    subscription_id = str(uuid.uuid4())
    minute = 2_000_000 * 60.0
    assert _count_allowed(subscription_id, 2, 3, minute + 1) == 2
    with pytest.raises(LimitExceeded) as limited:
        check_rate(key=subscription_rate_key(subscription_id), limit=2, now=minute + 50)
    assert limited.value.retry_after == 11
    assert _count_allowed(subscription_id, 2, 3, minute + 61) == 2


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the counter is shared across processes through Redis")
def test_server_processes_share_the_counter_through_redis():
    subscription_id = str(uuid.uuid4())
    now = 3_000_000 * 60.0 + 1
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'planqk_portal.settings'); django.setup()\n"
        "from tests.applications.test_limits import _count_allowed\n"
        f"print(_count_allowed({subscription_id!r}, 10, 6, {now}))"
    )
    env = {**os.environ, "REDIS_URL": settings.CACHES["default"]["LOCATION"]}
    outputs = [
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    allowed = sum(int(out.stdout.strip().splitlines()[-1]) for out in outputs)
    assert allowed == 10  # 12 calls in two processes, 10 allowed in total
    with pytest.raises(LimitExceeded):
        check_rate(key=subscription_rate_key(subscription_id), limit=10, now=now)


@pytest.mark.django_db
def test_expired_access_tokens_are_purged(client, app):
    from planqk_portal import reaper

    assert "applications.services.access_token_purge_expired" in reaper.registered()
    fetch_token(client, app)
    fetch_token(client, app)
    AccessToken.objects.filter(pk=AccessToken.objects.first().pk).update(expires=timezone.now() - timedelta(hours=2))
    assert access_token_purge_expired() == 1
    assert AccessToken.objects.count() == 1
