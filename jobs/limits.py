"""Limits on running services: requests per minute (a shared counter) and concurrent executions.

Per subscription (the plan's terms) or, for an owner running their own service without an
application, per owner (``PLANQK_OWNER_*`` settings). Admission (:mod:`jobs.admission`) applies
both to every new execution, whichever road it came by; the gateway counts its other requests
(status polls, results) against the same per-subscription counter.

The request counter lives in Django's cache: Redis when ``REDIS_URL`` is set, so every server
process shares it (``INCR`` is atomic); the embedded default's file cache is shared by the
threads of its one process under a lock. Concurrent executions are counted in the database,
under a lock on the subscription row, so two simultaneous POSTs cannot both take the last slot.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from accounts.models import User
from applications.models import Subscription
from planqk_portal.db import fetch_one
from planqk_portal.errors import ApplicationError

logger = logging.getLogger(__name__)
_WINDOW = 60
_local_lock = threading.Lock()
#: How long a caller over its concurrency limit is asked to wait before trying again.
CONCURRENCY_RETRY_AFTER = 5


class LimitExceeded(ApplicationError):
    """429 with ``Retry-After`` seconds, the same answer on every road."""

    def __init__(self, code: str, detail: str, retry_after: int) -> None:
        super().__init__(detail, code=code, status=429, headers={"Retry-After": str(retry_after)})
        self.detail = detail
        self.retry_after = retry_after


def subscription_rate_key(subscription_id: object) -> str:
    return f"sub:{subscription_id}"


def owner_rate_key(user_uuid: object) -> str:
    # The account's UUID, not its row id: ids can come back (SQLite reuses rolled-back ones).
    return f"owner:{user_uuid}"


_redis_clients: dict[int, Any] = {}


def _redis_client(cache: RedisCache, key: str) -> Any:
    """A redis-py client on the cache's write pool, made once per pool.

    Django's ``get_client()`` builds a new ``Redis`` object per call, which costs more CPU than
    the INCR itself; the client is thread-safe, so one per connection pool is enough.
    """
    try:
        pool = cache._cache._get_connection_pool(write=True)
    except AttributeError:  # a future Django without these internals: the public, slower way
        return cache._cache.get_client(key, write=True)
    client = _redis_clients.get(id(pool))
    if client is None:
        client = _redis_clients[id(pool)] = cache._cache._client(connection_pool=pool)
    return client


def _count_in_redis(cache: RedisCache, key: str) -> int:
    # INCR creates the counter; the first request of a window also sets its expiry.
    client = _redis_client(cache, key)
    count = int(client.incr(key))
    if count == 1:
        client.expire(key, _WINDOW * 2)
    return count


def _count_locally(key: str) -> int:
    cache = caches["default"]
    with _local_lock:
        try:
            return cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=_WINDOW * 2)
            return 1


def check_rate(*, key: str, limit: int, now: float | None = None, who: str = "This subscription's plan") -> None:
    """Count one request under ``key`` (see the ``*_rate_key`` functions); raise when over ``limit``/minute."""
    if not limit:
        return
    now = time.time() if now is None else now
    window = int(now // _WINDOW)
    cache = caches["default"]
    counter = f"planqk:rpm:{key}:{window}"
    try:
        if isinstance(cache, RedisCache):
            count = _count_in_redis(cache, cache.make_and_validate_key(counter))
        else:
            count = _count_locally(counter)
    except Exception:
        # A cache outage must not take the service API down: let the call through and say so.
        logger.warning("rate limit counter unavailable; request not counted", exc_info=True)
        return
    if count > limit:
        retry_after = max(1, int((window + 1) * _WINDOW - now) + 1)
        raise LimitExceeded(
            "rate-limit:requests-per-minute",
            f"{who} allows {limit} requests per minute; try again in {retry_after} s.",
            retry_after,
        )


_CONCURRENCY_SQL: dict[str, str] = {}


def _concurrency_sql() -> dict[str, str]:
    if not _CONCURRENCY_SQL:
        from jobs.models import Job

        subscriptions, jobs = Subscription._meta.db_table, Job._meta.db_table
        _CONCURRENCY_SQL["lock"] = f"SELECT id FROM {subscriptions} WHERE id = %s FOR UPDATE"  # noqa: S608
        # Counting stops at the limit: the cost stays bounded however many executions are queued.
        _CONCURRENCY_SQL["count"] = (
            f"SELECT count(*) FROM (SELECT 1 FROM {jobs} WHERE subscription_id = %s AND status IN (%s, %s) "  # noqa: S608
            "LIMIT %s) AS active"
        )
        users = User._meta.db_table
        _CONCURRENCY_SQL["owner_lock"] = f"SELECT id FROM {users} WHERE id = %s FOR UPDATE"  # noqa: S608
        _CONCURRENCY_SQL["owner_count"] = (
            f"SELECT count(*) FROM (SELECT 1 FROM {jobs} WHERE owner_id = %s AND subscription_id IS NULL "  # noqa: S608
            "AND status IN (%s, %s) LIMIT %s) AS active"
        )
    return _CONCURRENCY_SQL


def check_concurrency(*, subscription_id: uuid.UUID, limit: int) -> None:
    """Raise when the subscription already has ``limit`` unfinished executions (0: no limit).

    Call inside a transaction and create the job in the same one: the subscription row stays
    locked until then, so two simultaneous requests cannot both take the last slot. (SQLite has
    no row locks, but its write transactions already run one at a time.)
    """
    from jobs.models import JobStatus

    if not limit:
        return  # nothing to count, so nothing to serialise either
    sql = _concurrency_sql()
    key = Subscription._meta.pk.get_db_prep_value(subscription_id, connection)
    if connection.features.has_select_for_update:
        fetch_one(sql["lock"], [key])
    row = fetch_one(sql["count"], [key, JobStatus.PENDING, JobStatus.RUNNING, limit])
    active = row[0] if row else 0
    if active >= limit:
        raise LimitExceeded(
            "rate-limit:concurrent-executions",
            f"This subscription's plan allows {limit} concurrent executions and {active} are still running; "
            "wait for one to finish or cancel one.",
            CONCURRENCY_RETRY_AFTER,
        )


def check_owner_concurrency(*, user_id: int, limit: int) -> None:
    """The owner quota's concurrent executions (runs of their own services without an application).

    Same locking rule as :func:`check_concurrency`, on the owner's row.
    """
    from jobs.models import JobStatus

    if not limit:
        return
    sql = _concurrency_sql()
    if connection.features.has_select_for_update:
        fetch_one(sql["owner_lock"], [user_id])
    row = fetch_one(sql["owner_count"], [user_id, JobStatus.PENDING, JobStatus.RUNNING, limit])
    active = row[0] if row else 0
    if active >= limit:
        raise LimitExceeded(
            "rate-limit:concurrent-executions",
            f"Your quota allows {limit} concurrent executions of your own services and {active} are still running; "
            "wait for one to finish or cancel one.",
            CONCURRENCY_RETRY_AFTER,
        )
