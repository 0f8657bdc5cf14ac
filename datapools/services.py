"""Writes for data pools: pools, data sources, files, shares.

Every service checks the caller's access through :mod:`datapools.selectors` itself, so a view
that forgets a check cannot widen access. Stored objects are named by ids only
(``datapools/<pool id>/<file id>``); the user's file name is kept in the model, never in a path.
Deleting rows removes stored objects on commit, whatever deleted them (see ``signals.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mimetypes
import os
import re
import unicodedata
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.models import User
from planqk_portal.errors import ApplicationError

from .models import DataFile, DataPool, DataPoolShare, DataSourceDescriptor, Permission, Visibility
from .selectors import Access, datapool_get, datasource_default, human_size, max_upload_bytes, parse_json_bytes

logger = logging.getLogger(__name__)

CHUNK_SIZE = 256 * 1024
# JSON uploads up to this size are parsed once to refuse broken files at once; larger ones would
# cost several times their size in memory to parse, so they are checked when they are read.
JSON_CHECK_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_SOURCE_NAME = "default"
_CONTENT_TYPE = re.compile(r"^[a-zA-Z0-9][\w.+-]*/[\w.+-]+$")


# --- names ---------------------------------------------------------------------------------------


def clean_file_name(name: str | None) -> str:
    """A display name from a user-supplied file name: no folders, no control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".").strip()
    if not name:
        return "file"
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 255 - len(ext) - 1] + dot + ext if dot and len(ext) <= 16 else name[:255]
    return name


def _clean_text(value: str | None, *, label: str, max_length: int, required: bool, code: str) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ApplicationError(f"Give the {label} a name.", code=code)
    if len(value) > max_length:
        raise ApplicationError(f"The {label} can be at most {max_length} characters.", code=code)
    return value


def _content_type_for(name: str, declared: str | None) -> str:
    if name.lower().endswith(".json"):
        return "application/json"
    guessed, _ = mimetypes.guess_type(name)
    if guessed:
        return guessed
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and len(declared) <= 120 and _CONTENT_TYPE.match(declared):
        return declared
    return "application/octet-stream"


def _storage_name(pool_id: uuid.UUID, file_id: uuid.UUID) -> str:
    return f"datapools/{pool_id}/{file_id}"


def remove_stored_objects(names: Iterable[str]) -> None:
    """Delete stored objects; a failure is logged, never raised (the rows are gone already)."""
    folders = set()
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
            folders.add(name.rsplit("/", 1)[0])
        except Exception:
            logger.exception("could not delete stored data file %s", name)
    if isinstance(default_storage, FileSystemStorage):
        # Object stores have no folders; on disk, an emptied pool folder goes too.
        for folder in folders:
            with contextlib.suppress(OSError):
                os.rmdir(default_storage.path(folder))


def _require(*, user: User, pool: DataPool, need: Access) -> DataPool:
    return datapool_get(user=user, pool_id=pool.pk, need=need)


# --- pools ---------------------------------------------------------------------------------------


def datapool_create(*, user: User, name: str, description: str = "", visibility: str = Visibility.PRIVATE) -> DataPool:
    """Create a pool owned by ``user`` with its default data source."""
    name = _clean_text(name, label="data pool", max_length=120, required=True, code="datapool:bad-name")
    description = _clean_text(
        description, label="description", max_length=5000, required=False, code="datapool:bad-description"
    )
    if visibility not in Visibility.values:
        raise ApplicationError(
            f"Visibility must be one of {', '.join(Visibility.values)}.", code="datapool:bad-visibility"
        )
    with transaction.atomic():
        pool = DataPool(owner=user, name=name, description=description, visibility=visibility)
        pool.full_clean()
        pool.save()
        DataSourceDescriptor.objects.create(pool=pool, name=DEFAULT_SOURCE_NAME, is_default=True)
    return pool


def datapool_update(
    *,
    user: User,
    pool: DataPool,
    name: str | None = None,
    description: str | None = None,
    visibility: str | None = None,
) -> DataPool:
    """Rename, describe or change the visibility of a pool (owner only)."""
    pool = _require(user=user, pool=pool, need=Access.OWNER)
    fields = ["updated_at"]
    if name is not None:
        pool.name = _clean_text(name, label="data pool", max_length=120, required=True, code="datapool:bad-name")
        fields.append("name")
    if description is not None:
        pool.description = _clean_text(
            description, label="description", max_length=5000, required=False, code="datapool:bad-description"
        )
        fields.append("description")
    if visibility is not None:
        if visibility not in Visibility.values:
            raise ApplicationError(
                f"Visibility must be one of {', '.join(Visibility.values)}.", code="datapool:bad-visibility"
            )
        pool.visibility = visibility
        fields.append("visibility")
    pool.save(update_fields=fields)
    return pool


def datapool_delete(*, user: User, pool: DataPool) -> None:
    """Delete a pool with all its files (owner only); stored objects go once the delete commits."""
    pool = _require(user=user, pool=pool, need=Access.OWNER)
    with transaction.atomic():
        # The row lock waits for an upload that is being committed (it locks the pool too), so
        # the cascade sees its file. Each deleted file's object goes on commit (signals.py).
        list(DataPool.objects.select_for_update().filter(pk=pool.pk).values_list("pk", flat=True))
        DataPool.objects.filter(pk=pool.pk).delete()


# --- sharing -------------------------------------------------------------------------------------


def datapool_share(*, user: User, pool: DataPool, email: str, permission: str = Permission.READ) -> DataPoolShare:
    """Share a pool by e-mail (owner only); sharing again changes the permission.

    An address nobody has registered gets an invitation (a share without user) that is answered
    exactly like a share, so the owner cannot find out who has an account here.
    """
    pool = _require(user=user, pool=pool, need=Access.OWNER)
    if permission not in Permission.values:
        raise ApplicationError(
            f"Permission must be one of {', '.join(Permission.values)}.", code="datapool:bad-permission"
        )
    email = (email or "").strip().lower()
    if not email:
        raise ApplicationError("Enter the e-mail address of the user to share with.", code="datapool:bad-email")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(f"“{email}” is not an e-mail address.", code="datapool:bad-email") from exc
    target = User.objects.filter(email__iexact=email, is_active=True).first()
    if target is not None and target.pk == pool.owner_id:
        raise ApplicationError("You own this data pool already; share it with someone else.", code="datapool:self")
    with transaction.atomic():
        # Nobody registered with the address: an invitation, answered exactly like a share.
        lookup = {"user": target} if target is not None else {"user": None, "email": email}
        share, created = DataPoolShare.objects.select_for_update().get_or_create(
            pool=pool, **lookup, defaults={"permission": permission, "email": email}
        )
        if not created and share.permission != permission:
            share.permission = permission
            share.save(update_fields=["permission"])
    return share


def datapool_invitations_accept(*, user: User, email: str) -> int:
    """Turn the invitations to ``email`` into shares of ``user``; call it once the address is confirmed.

    A pool already shared with the user keeps the higher of the two permissions. Returns how
    many pools the user got access to.
    """
    email = (email or "").strip().lower()
    accepted = 0
    with transaction.atomic():
        for invitation in DataPoolShare.objects.select_for_update().filter(user__isnull=True, email=email):
            if invitation.pool.owner_id == user.pk:
                invitation.delete()
                continue
            existing = DataPoolShare.objects.filter(pool_id=invitation.pool_id, user=user).first()
            if existing is None:
                invitation.user = user
                invitation.save(update_fields=["user"])
                accepted += 1
                continue
            if invitation.permission == Permission.WRITE and existing.permission != Permission.WRITE:
                existing.permission = Permission.WRITE
                existing.save(update_fields=["permission"])
            invitation.delete()
    return accepted


def datapool_unshare(*, user: User, pool: DataPool, share_id: int) -> None:
    """Remove a share: the owner removes anyone's; a user may remove their own (leave the pool)."""
    share = DataPoolShare.objects.filter(pool_id=pool.pk, pk=share_id).select_related("user").first()
    if share is None:
        raise ApplicationError("This share does not exist.", code="datapool:not-found", status=404)
    if share.user_id != getattr(user, "pk", None):
        _require(user=user, pool=pool, need=Access.OWNER)
    share.delete()


# --- data sources --------------------------------------------------------------------------------


def datasource_create(*, user: User, pool: DataPool, name: str) -> DataSourceDescriptor:
    """Add a data source (a group of files) to a pool (write access)."""
    pool = _require(user=user, pool=pool, need=Access.WRITE)
    name = _clean_text(name, label="data source", max_length=120, required=True, code="datapool:bad-name")
    if DataSourceDescriptor.objects.filter(pool=pool, name__iexact=name).exists():
        raise ApplicationError(f"This pool has a data source named “{name}” already.", code="datapool:source-exists")
    try:
        with transaction.atomic():
            return DataSourceDescriptor.objects.create(pool=pool, name=name)
    except IntegrityError as exc:  # a concurrent create with the same name won
        raise ApplicationError(
            f"This pool has a data source named “{name}” already.", code="datapool:source-exists"
        ) from exc


def datasource_delete(*, user: User, source: DataSourceDescriptor) -> None:
    """Delete a data source and its files (write access); the default source stays."""
    _require(user=user, pool=source.pool, need=Access.WRITE)
    if source.is_default:
        raise ApplicationError(
            "The default data source cannot be deleted; delete its files or the whole pool instead.",
            code="datapool:default-source",
        )
    with transaction.atomic():
        list(DataSourceDescriptor.objects.select_for_update().filter(pk=source.pk).values_list("pk", flat=True))
        DataSourceDescriptor.objects.filter(pk=source.pk).delete()


# --- files ---------------------------------------------------------------------------------------


def _too_large(size_text: str, limit: int) -> ApplicationError:
    return ApplicationError(
        f"The file is {size_text}; uploads are limited to {human_size(limit)} "
        "(PLANQK_DATAPOOL_MAX_UPLOAD_MB). Nothing was stored.",
        code="datapool:too-large",
        status=413,
    )


def _measure(upload: File, limit: int) -> tuple[int, str]:
    """Size and sha256 of an upload, read in chunks; refuses past ``limit`` without reading on."""
    metered_size = getattr(upload, "metered_size", None)
    metered_sha = getattr(upload, "metered_sha256", None)
    if metered_size is not None and metered_sha:
        # Counted and hashed by MeteredUploadHandler as the bytes arrived: no second pass.
        if metered_size > limit:
            raise _too_large(human_size(metered_size), limit)
        return metered_size, metered_sha
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    while chunk := upload.read(CHUNK_SIZE):
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {human_size(limit)}", limit)
        digest.update(chunk)
    upload.seek(0)
    return size, digest.hexdigest()


def _check_json_upload(upload: File, *, size: int, name: str) -> None:
    if size > JSON_CHECK_MAX_BYTES:
        return
    upload.seek(0)
    raw = upload.read(size + 1)
    upload.seek(0)
    try:
        parse_json_bytes(raw, label=f"“{name}”")
    except ApplicationError as exc:
        raise ApplicationError(
            f"{exc.message} Nothing was stored. Fix the file or give it another extension than .json.",
            code=exc.code,
            status=exc.status,
        ) from exc


def datafile_upload(
    *,
    user: User,
    pool: DataPool,
    upload: File,
    name: str | None = None,
    source: DataSourceDescriptor | None = None,
    content_type: str | None = None,
) -> DataFile:
    """Store an uploaded file in a pool (write access).

    The content goes to ``default_storage`` under an id-only name. Refused with nothing stored:
    more than ``PLANQK_DATAPOOL_MAX_UPLOAD_MB`` (413 ``datapool:too-large``), an empty file
    (``datapool:empty``), a ``.json`` file that is not JSON (422 ``datapool:not-json``).
    """
    pool = _require(user=user, pool=pool, need=Access.WRITE)
    if source is None:
        source = datasource_default(pool=pool)
    elif source.pool_id != pool.pk:
        raise ApplicationError("That data source belongs to another pool.", code="datapool:not-found", status=404)
    display_name = clean_file_name(name if name is not None else getattr(upload, "name", None))
    limit = max_upload_bytes()
    size, sha256 = _measure(upload, limit)
    if size == 0:
        raise ApplicationError(f"“{display_name}” is empty. Nothing was stored.", code="datapool:empty")
    file_type = _content_type_for(display_name, content_type or getattr(upload, "content_type", None))
    if file_type == "application/json":
        _check_json_upload(upload, size=size, name=display_name)
    return _store(
        user=user,
        pool=pool,
        source=source,
        content=upload,
        name=display_name,
        size=size,
        sha256=sha256,
        content_type=file_type,
    )


def _store(
    *,
    user: User,
    pool: DataPool,
    source: DataSourceDescriptor,
    content: File,
    name: str,
    size: int,
    sha256: str,
    content_type: str,
) -> DataFile:
    file_id = uuid.uuid4()
    content.seek(0)
    try:
        stored_name = default_storage.save(_storage_name(pool.pk, file_id), content)
    except Exception as exc:
        logger.exception("could not store a data file in pool %s", pool.pk)
        raise ApplicationError(
            "The file could not be written to storage. Try again later.", code="datapool:storage-failed", status=503
        ) from exc
    try:
        with transaction.atomic():
            # Locks the pool and the source, so a concurrent delete cannot leave this row orphaned.
            alive = DataPool.objects.select_for_update().filter(pk=pool.pk).exists()
            alive = alive and DataSourceDescriptor.objects.select_for_update().filter(pk=source.pk).exists()
            if not alive:
                raise ApplicationError(
                    "The data pool or data source was deleted meanwhile.", code="datapool:not-found", status=404
                )
            datafile = DataFile(
                id=file_id,
                pool=pool,
                descriptor=source,
                name=name,
                size=size,
                sha256=sha256,
                content_type=content_type,
                created_by=user if getattr(user, "pk", None) else None,
            )
            datafile.file.name = stored_name
            datafile.save(force_insert=True)
            DataPool.objects.filter(pk=pool.pk).update(updated_at=datafile.created_at)
    except BaseException:
        remove_stored_objects([stored_name])
        raise
    return datafile


def datafile_delete(*, user: User, datafile: DataFile) -> None:
    """Delete a file (write access); the stored object goes once the delete commits."""
    _require(user=user, pool=datafile.pool, need=Access.WRITE)
    DataFile.objects.filter(pk=datafile.pk).delete()


def datafile_create_from_json(*, user: User, pool: DataPool | None, name: str, payload: Any) -> DataFile:
    """Save ``payload`` as a JSON file named after ``name`` (``.json`` added) into ``pool``.

    With ``pool=None`` a new private pool named ``name`` is created for ``user``. Needs write
    access to an existing pool (404 ``datapool:not-found`` when it cannot even read it, 403
    ``datapool:forbidden`` when it only reads); a payload that is not JSON-serialisable
    is 422 ``datapool:not-json``, one over the upload limit 413 ``datapool:too-large``.
    """
    base = clean_file_name(name)
    file_name = base if base.lower().endswith(".json") else f"{base[:250]}.json"
    try:
        raw = json.dumps(payload, ensure_ascii=False, allow_nan=False, indent=2).encode()
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            f"The result cannot be saved as JSON: {exc}.", code="datapool:not-json", status=422
        ) from exc
    limit = max_upload_bytes()
    if len(raw) > limit:
        raise _too_large(human_size(len(raw)), limit)
    with transaction.atomic():
        # One transaction: a new pool does not outlive a failed write of its only file.
        if pool is None:
            pool_name = base[:-5] if base.lower().endswith(".json") else base
            pool = datapool_create(user=user, name=pool_name[:120] or "results")
        else:
            pool = _require(user=user, pool=pool, need=Access.WRITE)
        return _store(
            user=user,
            pool=pool,
            source=datasource_default(pool=pool),
            content=ContentFile(raw, name=file_name),
            name=file_name,
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            content_type="application/json",
        )
