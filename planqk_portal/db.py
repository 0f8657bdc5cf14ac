"""Helpers for the few hot paths that bypass the ORM's query compiler.

Compiling an ORM query costs several times what PostgreSQL needs to run a simple indexed one
(see bench/results/gateway.md), so the gateway's per-request statements are written as SQL
once and run as prepared statements. Everything else uses the ORM.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=Model)


def fetch_one(query: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Run a hot-path query and return its first row; on PostgreSQL as a prepared statement.

    Django binds parameters on the client, so PostgreSQL would plan the statement on every call
    (for the gateway's five-table join, planning took three times as long as executing it). A
    server-side binding cursor lets psycopg prepare it once it has run ``prepare_threshold``
    times on the connection (``DATABASE_PREPARE_THRESHOLD``; 0 never prepares, for PgBouncer in
    transaction mode). It runs on Django's connection, so it takes part in the current transaction.
    """
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def as_uuid(value: Any) -> uuid.UUID:
    """A UUID column as returned by the backend (a UUID on PostgreSQL, 32 hex digits on SQLite)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def as_datetime(value: Any) -> datetime | None:
    """A timestamp column as returned by the backend, timezone-aware.

    SQLite hands raw queries naive datetimes (or text); like everything stored, they are UTC.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def partial_instance(model: type[M], **values: Any) -> M:
    """An instance of ``model`` as if loaded from the database with only ``values`` (by attname).

    The other fields are deferred: reading one loads it with a query, so the instance is never
    wrong, only lazy. Used where a raw query already returned the few columns a caller needs.
    """
    names = set(values)
    row = [values[field.attname] for field in model._meta.concrete_fields if field.attname in names]
    if len(row) != len(names):
        unknown = names - {field.attname for field in model._meta.concrete_fields}
        raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
    return model.from_db(connection.alias, names, row)
