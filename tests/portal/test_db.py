"""planqk_portal.db: the hot path's prepared statements and partial instances."""

import pytest
from django.db import connection

from planqk_portal.db import fetch_one, partial_instance

pytestmark = pytest.mark.django_db


def _prepared(fragment: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{fragment}%"])
        return cursor.fetchone()[0]


def test_fetch_one_prepares_after_the_threshold_and_never_when_it_is_off():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.prepare_threshold
    try:
        raw.prepare_threshold = 5
        for number in range(7):
            assert fetch_one("SELECT %s::int + 40101", [number]) == (number + 40101,)
        assert _prepared("+ 40101") == 1

        raw.prepare_threshold = None  # DATABASE_PREPARE_THRESHOLD=0, e.g. behind PgBouncer
        for number in range(7):
            assert fetch_one("SELECT %s::int + 40202", [number]) == (number + 40202,)
        assert _prepared("+ 40202") == 0
    finally:
        raw.prepare_threshold = saved


def test_partial_instance_loads_the_other_fields_on_access(user):
    stub = partial_instance(type(user), id=user.pk)
    assert stub.pk == user.pk
    assert stub.get_deferred_fields() >= {"email"}
    assert stub.email == user.email  # read from the database on first access


def test_partial_instance_refuses_unknown_columns(user):
    with pytest.raises(ValueError, match="no columns"):
        partial_instance(type(user), id=user.pk, nonsense=1)
