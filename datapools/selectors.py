"""Reads for data pools, scoped to the requesting user.

The access rule lives in one place, :func:`datapool_queryset_with_access`: the owner may do
everything, a WRITE share reads and writes, a READ share or a PUBLIC pool reads. The UI, the
REST API, gateway references and jobs all go through it.
"""

from __future__ import annotations

import json
import logging
import uuid
from enum import IntEnum
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, QuerySet, Value, When

from planqk_portal.errors import ApplicationError

from .models import DataFile, DataPool, DataPoolShare, DataSourceDescriptor, Permission, Visibility

logger = logging.getLogger(__name__)

REFERENCE_KEYS = ("dataPoolId", "dataSourceDescriptorId", "fileId")


class Access(IntEnum):
    """What a user may do with a pool; higher includes lower."""

    NONE = 0
    READ = 1
    WRITE = 2
    OWNER = 3


def _user_id(user: Any) -> int | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def datapool_queryset_with_access(*, user: Any) -> QuerySet[DataPool]:
    """Every pool, annotated with ``access`` (an :class:`Access` value) for ``user``."""
    user_id = _user_id(user)
    if user_id is None:
        # Anonymous callers never own or hold shares; they see public pools only.
        access = Case(When(visibility=Visibility.PUBLIC, then=Value(Access.READ)), default=Value(Access.NONE))
        return DataPool.objects.annotate(access=access)
    shares = DataPoolShare.objects.filter(pool=OuterRef("pk"), user_id=user_id)
    access = Case(
        When(owner_id=user_id, then=Value(Access.OWNER)),
        When(Exists(shares.filter(permission=Permission.WRITE)), then=Value(Access.WRITE)),
        When(Exists(shares), then=Value(Access.READ)),
        When(visibility=Visibility.PUBLIC, then=Value(Access.READ)),
        default=Value(Access.NONE),
        output_field=IntegerField(),
    )
    return DataPool.objects.annotate(access=access)


def datapool_list_readable(*, user: Any) -> QuerySet[DataPool]:
    """Pools the user may read (own, shared with them, public), newest first, with ``file_count``."""
    return (
        datapool_queryset_with_access(user=user)
        .filter(access__gte=Access.READ)
        .select_related("owner")
        .annotate(file_count=Count("files", distinct=True))
        .order_by("-created_at")
    )


def datapool_list_writable(*, user: Any) -> QuerySet[DataPool]:
    """Pools the user may add files to (own and WRITE shares), newest first."""
    return (
        datapool_queryset_with_access(user=user)
        .filter(access__gte=Access.WRITE)
        .select_related("owner")
        .order_by("-created_at")
    )


def _parse_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def datapool_get(*, user: Any, pool_id: Any, need: Access = Access.READ) -> DataPool:
    """The pool with ``access`` annotated.

    404 ``datapool:not-found`` for a missing pool and for one the user cannot read (the same
    answer, so nobody learns which pools exist); 403 ``datapool:forbidden`` only for a pool the
    user can read but not change as ``need`` asks.
    """
    parsed = _parse_uuid(pool_id)
    pool = (
        datapool_queryset_with_access(user=user).select_related("owner").filter(pk=parsed).first() if parsed else None
    )
    if pool is None or pool.access == Access.NONE:
        raise ApplicationError(f"Data pool {pool_id} does not exist.", code="datapool:not-found", status=404)
    if pool.access < need:
        if need == Access.OWNER:
            message = f"Only the owner of data pool “{pool.name}” can do this."
        else:
            message = f"You can read data pool “{pool.name}” but not change it. Ask its owner for write access."
        raise ApplicationError(message, code="datapool:forbidden", status=403)
    return pool


def datapool_invitations_waiting(*, user: Any) -> int:
    """Invitations to the user's own address that wait for it to be confirmed (no pool named yet)."""
    from allauth.account.models import EmailAddress

    if _user_id(user) is None:
        return 0
    unconfirmed = EmailAddress.objects.filter(user=user, verified=False).values_list("email", flat=True)
    addresses = {address.lower() for address in unconfirmed}
    if not EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists():
        addresses.add(user.email.lower())
    return DataPoolShare.objects.filter(user__isnull=True, email__in=addresses).count() if addresses else 0


def datapool_access(*, user: Any, pool: DataPool) -> Access:
    """The user's access to one pool (one query, through the same rule)."""
    access = datapool_queryset_with_access(user=user).filter(pk=pool.pk).values_list("access", flat=True).first()
    return Access(access or Access.NONE)


def datasource_list(*, pool: DataPool) -> QuerySet[DataSourceDescriptor]:
    """The pool's data sources (default first) with ``file_count``; the caller checked read access."""
    return (
        DataSourceDescriptor.objects.filter(pool=pool)
        .annotate(file_count=Count("files"))
        .order_by("-is_default", "name")
    )


def datasource_get(*, pool: DataPool, source_id: Any) -> DataSourceDescriptor:
    parsed = _parse_uuid(source_id)
    source = DataSourceDescriptor.objects.filter(pool=pool, pk=parsed).first() if parsed else None
    if source is None:
        raise ApplicationError(
            f"Data source {source_id} does not exist in data pool “{pool.name}”.",
            code="datapool:not-found",
            status=404,
        )
    return source


def datasource_default(*, pool: DataPool) -> DataSourceDescriptor:
    """The pool's default data source (re-created if it was lost, e.g. a pool made in the admin)."""
    source = DataSourceDescriptor.objects.filter(pool=pool, is_default=True).first()
    if source is None:
        source, _ = DataSourceDescriptor.objects.get_or_create(pool=pool, name="default", defaults={"is_default": True})
    return source


def datafile_list(*, pool: DataPool, source: DataSourceDescriptor | None = None) -> QuerySet[DataFile]:
    """Files of a pool (or of one of its data sources), newest first; the caller checked read access."""
    files = DataFile.objects.filter(pool=pool).select_related("descriptor")
    if source is not None:
        files = files.filter(descriptor=source)
    return files


def datafile_get(*, pool: DataPool, file_id: Any) -> DataFile:
    parsed = _parse_uuid(file_id)
    datafile = DataFile.objects.select_related("pool", "descriptor").filter(pool=pool, pk=parsed).first()
    if datafile is None:
        raise ApplicationError(
            f"File {file_id} does not exist in data pool “{pool.name}”.", code="datapool:not-found", status=404
        )
    return datafile


def datafile_list_json_readable(*, user: Any) -> QuerySet[DataFile]:
    """JSON files the user may read, for pickers such as Create Job's input and parameters."""
    readable = datapool_queryset_with_access(user=user).filter(access__gte=Access.READ).values("pk")
    return (
        DataFile.objects.filter(pool__in=readable, content_type="application/json")
        .select_related("pool", "descriptor")
        .order_by("pool__name", "descriptor__name", "name")
    )


# --- references (dataRef / paramsRef) -----------------------------------------------------------


def _bad_reference(detail: str) -> ApplicationError:
    return ApplicationError(
        f"{detail} A data pool reference is an object "
        '{"dataPoolId": "<uuid>", "dataSourceDescriptorId": "<uuid>", "fileId": "<uuid>"}; '
        "copy it from the file's row on the Data Pools page.",
        code="datapool:bad-reference",
        status=400,
    )


def datafile_check_access(*, user: Any, ref: dict) -> DataFile:
    """The referenced file if ``user`` may read it.

    400 ``datapool:bad-reference`` (not an object with the three ids), 404 ``datapool:not-found``
    (also for a pool the user cannot read: the same answer as a missing one).
    """
    if not isinstance(ref, dict):
        raise _bad_reference(f"The reference must be a JSON object, not {type(ref).__name__}.")
    missing = [key for key in REFERENCE_KEYS if key not in ref]
    if missing:
        raise _bad_reference(f"The reference lacks {', '.join(missing)}.")
    ids = {}
    for key in REFERENCE_KEYS:
        parsed = _parse_uuid(ref[key])
        if parsed is None:
            raise _bad_reference(f"{key} must be a UUID string, got {json.dumps(ref[key])[:80]}.")
        ids[key] = parsed
    pool = datapool_get(user=user, pool_id=ids["dataPoolId"], need=Access.READ)
    datafile = (
        DataFile.objects.select_related("pool", "descriptor")
        .filter(pk=ids["fileId"], pool=pool, descriptor_id=ids["dataSourceDescriptorId"])
        .first()
    )
    if datafile is None:
        raise ApplicationError(
            f"File {ids['fileId']} does not exist in data source {ids['dataSourceDescriptorId']} of data pool "
            f"“{pool.name}”. It may have been deleted.",
            code="datapool:not-found",
            status=404,
        )
    return datafile


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_bytes(raw: bytes, *, label: str) -> Any:
    """Strict JSON (UTF-8, no NaN/Infinity) or 422 ``datapool:not-json`` saying where it broke."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            f"{label} is not JSON: it is not UTF-8 text (byte {exc.start}).", code="datapool:not-json", status=422
        ) from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApplicationError(
            f"{label} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            code="datapool:not-json",
            status=422,
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise ApplicationError(f"{label} is not JSON: {exc}.", code="datapool:not-json", status=422) from exc


def human_size(size: int) -> str:
    """1536 -> '1.5 KB' (binary units, as the upload limit is counted)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def datafile_open(*, datafile: DataFile) -> Any:
    """Open the stored content for reading; 404 when the object is gone, 503 when storage fails."""
    from django.core.files.storage import default_storage

    missing = ApplicationError(
        f"The content of file “{datafile.name}” is missing from storage.", code="datapool:not-found", status=404
    )
    try:
        # Object storages open lazily and fail only on the first read: ask first.
        if not datafile.file.name or not default_storage.exists(datafile.file.name):
            raise missing
        return default_storage.open(datafile.file.name, "rb")
    except ApplicationError:
        raise
    except FileNotFoundError as exc:
        raise missing from exc
    except Exception as exc:
        logger.exception("cannot open data file %s (%s)", datafile.pk, datafile.file.name)
        raise ApplicationError(
            f"The content of file “{datafile.name}” cannot be read from storage right now.",
            code="datapool:unreadable",
            status=503,
        ) from exc


def datafile_read_json(*, user: Any, ref: dict, max_bytes: int) -> Any:
    """The referenced file's JSON value, read with ``user``'s access rights.

    Errors as :func:`datafile_check_access` plus 413 ``datapool:too-large`` (more than
    ``max_bytes``) and 422 ``datapool:not-json``; 404 ``datapool:not-found`` also when the stored
    content has gone, 503 ``datapool:unreadable`` when storage fails.
    """
    datafile = datafile_check_access(user=user, ref=ref)
    too_large = ApplicationError(
        f"File “{datafile.name}” is {human_size(datafile.size)}; a service input can be at most "
        f"{human_size(max_bytes)}.",
        code="datapool:too-large",
        status=413,
    )
    if datafile.size > max_bytes:
        raise too_large
    handle = datafile_open(datafile=datafile)
    try:
        # One byte more than allowed tells a stored object larger than its recorded size apart.
        raw = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ApplicationError(
            f"The content of file “{datafile.name}” is missing from storage.", code="datapool:not-found", status=404
        ) from exc
    except Exception as exc:
        logger.exception("cannot read data file %s", datafile.pk)
        raise ApplicationError(
            f"The content of file “{datafile.name}” cannot be read from storage right now.",
            code="datapool:unreadable",
            status=503,
        ) from exc
    finally:
        handle.close()
    if len(raw) > max_bytes:
        raise too_large
    return parse_json_bytes(raw, label=f"File “{datafile.name}”")


def max_upload_bytes() -> int:
    """The per-upload limit (``PLANQK_DATAPOOL_MAX_UPLOAD_MB``) in bytes."""
    return int(settings.PLANQK_DATAPOOL_MAX_UPLOAD_MB) * 1024 * 1024
