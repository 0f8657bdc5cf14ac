"""Writes for algorithms, implementations and their files, and Create Service from a file.

Keyword-only and typed; every check raises :class:`~planqk_portal.errors.ApplicationError`.
Files are checked with the service upload checks (:func:`services.uploads.inspect_archive` and
the API spec's checks) before anything is stored, so an archive refused as a service is refused
here with the same code and message. A service made from a file goes through
:func:`services.services.service_create` like any other (card, name, archive, spec, build).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterable
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.text import slugify

from planqk_portal.errors import ApplicationError
from planqk_portal.errors import full_clean as _full_clean

from . import selectors
from .models import (
    Algorithm,
    FileSource,
    FileStatus,
    Implementation,
    ImplementationFile,
    ImplementationShare,
    ProblemClass,
    Sdk,
    ServiceOrigin,
    Tag,
    Visibility,
)

MAX_TAGS = 10
MAX_DESCRIPTION = 20_000
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9+#.-]{0,39}$")


def _choice(value: Any, choices: type, *, label: str, code: str) -> str:
    text = str(value or "").strip().upper()
    if text not in choices.values:
        raise ApplicationError(f"Unknown {label} {value!r}; choose one of {', '.join(choices.values)}.", code=code)
    return text


def _description(text: Any) -> str:
    text = str(text or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise ApplicationError(
            f"The description can be at most {MAX_DESCRIPTION} characters.", code="algorithm:description-too-long"
        )
    return text


def parse_tags(value: str | Iterable[str] | None) -> list[str]:
    """Tags from ``"qaoa, max-cut"`` or a list: lower case, de-duplicated, at most 10."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    tags: list[str] = []
    for item in items:
        tag = str(item).strip().lower().replace(" ", "-")
        if not tag:
            continue
        if not _TAG_RE.match(tag):
            raise ApplicationError(
                f"{item!r} cannot be a tag: use at most 40 letters, digits and - . + #.", code="algorithm:bad-tag"
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ApplicationError(f"At most {MAX_TAGS} tags.", code="algorithm:bad-tag")
    return tags


def _set_tags(algorithm: Algorithm, tags: list[str]) -> None:
    algorithm.tags.set([Tag.objects.get_or_create(name=tag)[0] for tag in tags])


# --- algorithms ----------------------------------------------------------------------------------


def algorithm_create(
    *,
    author: Any,
    name: str,
    summary: str,
    description: str = "",
    problem_class: str = ProblemClass.OTHER,
    tags: str | Iterable[str] | None = None,
) -> Algorithm:
    """Propose an algorithm (anyone logged in); its author edits it later."""
    name = (name or "").strip()
    summary = (summary or "").strip()
    if not name or not summary:
        raise ApplicationError("Give the algorithm a name and a one-line summary.", code="algorithm:invalid")
    algorithm = Algorithm(
        name=name,
        summary=summary,
        description=_description(description),
        problem_class=_choice(problem_class, ProblemClass, label="problem class", code="algorithm:bad-problem-class"),
        author=author,
    )
    tag_list = parse_tags(tags)
    if Algorithm.objects.filter(name__iexact=name).exists():
        raise ApplicationError(
            f"There is an algorithm called {name!r} already.", code="algorithm:name-taken", status=409
        )
    _full_clean(algorithm)
    with transaction.atomic():
        try:
            with transaction.atomic():
                algorithm.save(force_insert=True)
        except IntegrityError:
            raise ApplicationError(
                f"There is an algorithm called {name!r} already.", code="algorithm:name-taken", status=409
            ) from None
        _set_tags(algorithm, tag_list)
    return algorithm


def algorithm_update(
    *,
    algorithm: Algorithm,
    user: Any,
    name: str | None = None,
    summary: str | None = None,
    description: str | None = None,
    problem_class: str | None = None,
    tags: str | Iterable[str] | None = None,
) -> Algorithm:
    """Change an algorithm: only its author may (403 ``algorithm:forbidden``)."""
    if algorithm.author_id is None or algorithm.author_id != user.pk:
        raise ApplicationError("Only the algorithm's author can edit it.", code="algorithm:forbidden", status=403)
    with transaction.atomic():
        algorithm = Algorithm.objects.select_for_update().get(pk=algorithm.pk)
        if name is not None and name.strip() and name.strip() != algorithm.name:
            if Algorithm.objects.filter(name__iexact=name.strip()).exclude(pk=algorithm.pk).exists():
                raise ApplicationError(
                    f"There is an algorithm called {name.strip()!r} already.", code="algorithm:name-taken", status=409
                )
            algorithm.name = name.strip()
        if summary is not None and summary.strip():
            algorithm.summary = summary.strip()
        if description is not None:
            algorithm.description = _description(description)
        if problem_class is not None:
            algorithm.problem_class = _choice(
                problem_class, ProblemClass, label="problem class", code="algorithm:bad-problem-class"
            )
        _full_clean(algorithm)
        algorithm.save()
        if tags is not None:
            _set_tags(algorithm, parse_tags(tags))
    return algorithm


# --- implementations -----------------------------------------------------------------------------


def _users_by_email(emails: Iterable[str], *, owner: Any) -> list[Any]:
    from accounts.models import User

    users = []
    for email in emails:
        email = str(email).strip()
        if not email:
            continue
        found = User.objects.filter(email__iexact=email, is_active=True).first()
        if found is None:
            raise ApplicationError(f"No account has the e-mail address {email!r}.", code="implementation:unknown-user")
        if found.pk != owner.pk and found not in users:
            users.append(found)
    return users


def _emails(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return list(value.replace(";", ",").replace("\n", ",").split(",") if isinstance(value, str) else value)


def implementation_create(
    *,
    algorithm: Algorithm,
    owner: Any,
    name: str,
    description: str = "",
    sdk: str = Sdk.PYTHON,
    backend: str = "",
    license: str = "",
    visibility: str = Visibility.PRIVATE,
    shared_with: str | Iterable[str] | None = None,
) -> Implementation:
    """Add an implementation of ``algorithm`` owned by ``owner`` (files come separately)."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the implementation a name.", code="implementation:invalid")
    implementation = Implementation(
        algorithm=algorithm,
        owner=owner,
        name=name,
        description=_description(description),
        sdk=_choice(sdk, Sdk, label="SDK", code="implementation:bad-sdk"),
        backend=(backend or "").strip(),
        license=(license or "").strip(),
        visibility=_choice(visibility, Visibility, label="visibility", code="implementation:bad-visibility"),
    )
    users = _users_by_email(_emails(shared_with), owner=owner)
    if Implementation.objects.filter(algorithm=algorithm, owner=owner, name=name).exists():
        raise ApplicationError(
            f"You have an implementation called {name!r} of this algorithm already.",
            code="implementation:name-taken",
            status=409,
        )
    _full_clean(implementation)
    with transaction.atomic():
        implementation.save(force_insert=True)
        for user in users:
            ImplementationShare.objects.create(implementation=implementation, user=user)
    return implementation


def implementation_update(
    *,
    implementation: Implementation,
    user: Any,
    name: str | None = None,
    description: str | None = None,
    sdk: str | None = None,
    backend: str | None = None,
    license: str | None = None,
    visibility: str | None = None,
    shared_with: str | Iterable[str] | None = None,
) -> Implementation:
    """Change an implementation (owner only); ``shared_with`` replaces the list of named users."""
    if implementation.owner_id != user.pk:
        raise ApplicationError(
            "Only the implementation's owner can change it.", code="implementation:forbidden", status=403
        )
    with transaction.atomic():
        implementation = Implementation.objects.select_for_update().get(pk=implementation.pk)
        if name is not None and name.strip():
            implementation.name = name.strip()
        if description is not None:
            implementation.description = _description(description)
        if sdk is not None:
            implementation.sdk = _choice(sdk, Sdk, label="SDK", code="implementation:bad-sdk")
        if backend is not None:
            implementation.backend = backend.strip()
        if license is not None:
            implementation.license = license.strip()
        if visibility is not None:
            implementation.visibility = _choice(
                visibility, Visibility, label="visibility", code="implementation:bad-visibility"
            )
        _full_clean(implementation)
        try:
            with transaction.atomic():
                implementation.save()
        except IntegrityError:
            raise ApplicationError(
                "You have an implementation of this name already.", code="implementation:name-taken", status=409
            ) from None
        if shared_with is not None:
            users = _users_by_email(_emails(shared_with), owner=implementation.owner)
            implementation.shares.exclude(user__in=users).delete()
            for shared_user in users:
                ImplementationShare.objects.get_or_create(implementation=implementation, user=shared_user)
    return implementation


def implementation_delete(*, implementation: Implementation, user: Any) -> None:
    """Delete an implementation and its files (owner only); services made from it stay."""
    from django.core.files.storage import default_storage

    if implementation.owner_id != user.pk:
        raise ApplicationError(
            "Only the implementation's owner can delete it.", code="implementation:forbidden", status=403
        )
    names = [name for name in implementation.files.values_list("archive", flat=True) if name]
    # The services made from it are their users' own; their origin rows go with the implementation.
    implementation.delete()
    for name in names:
        with contextlib.suppress(OSError):
            default_storage.delete(name)


# --- files (versions of the code) ----------------------------------------------------------------


def _as_file(archive: Any) -> IO[bytes]:
    if isinstance(archive, bytes | bytearray):
        return ContentFile(bytes(archive), name="user_code.zip")
    if not hasattr(archive, "read") or not hasattr(archive, "seek"):
        raise ApplicationError("Upload the user code as a zip file.", code="upload:missing")
    return archive


def _check_archive(file: IO[bytes]) -> Any:
    """The service upload checks, unchanged: the archive, then its API spec and input schemas."""
    from planqk_service_api.schema import SchemaError, input_schemas_of
    from services import uploads

    summary = uploads.inspect_archive(file)
    if summary.api_spec is not None:
        source = f"{summary.api_spec_name} in the archive"
        spec = uploads.validate_api_spec(summary.api_spec, source=source)
        try:
            input_schemas_of(spec)
        except SchemaError as exc:
            raise ApplicationError(
                f"{source}: the input schemas of POST / cannot be used: {exc}.", code="spec:bad-schema", status=400
            ) from None
    return summary


def _store(*, implementation_id: uuid.UUID, file_id: uuid.UUID, file: IO[bytes]) -> tuple[str, int, str]:
    from django.core.files import File
    from django.core.files.storage import default_storage

    file.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := file.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    name = default_storage.save(f"implementation-files/{implementation_id}/{file_id}.zip", File(file))
    return name, size, digest.hexdigest()


def _next_version(implementation: Implementation) -> int:
    Implementation.objects.select_for_update().filter(pk=implementation.pk).first()
    return (implementation.files.aggregate(top=Max("version"))["top"] or 0) + 1


def implementation_file_add(
    *, implementation: Implementation, user: Any, archive: Any, filename: str = ""
) -> ImplementationFile:
    """A new version of the implementation's code from an uploaded archive (owner only).

    The archive is checked exactly as a service upload is (same codes, same messages) before it
    is stored; the earlier versions stay.
    """
    if implementation.owner_id != user.pk:
        raise ApplicationError(
            "Only the implementation's owner can add files.", code="implementation:forbidden", status=403
        )
    file = _as_file(archive)
    summary = _check_archive(file)
    file_id = uuid.uuid4()
    name, size, sha = _store(implementation_id=implementation.pk, file_id=file_id, file=file)
    filename = (filename or getattr(archive, "name", "") or "user_code.zip").rsplit("/", 1)[-1][:200]
    try:
        with transaction.atomic():
            row = ImplementationFile.objects.create(
                id=file_id,
                implementation=implementation,
                version=_next_version(implementation),
                filename=filename,
                source=FileSource.UPLOAD,
                status=FileStatus.READY,
                archive=name,
                size=size,
                sha256=sha,
                requirements=summary.requirements,
                has_api_spec=summary.api_spec is not None,
                created_by=user,
            )
    except BaseException:
        from django.core.files.storage import default_storage

        default_storage.delete(name)
        raise
    return row


def implementation_git_import(
    *, implementation: Implementation, user: Any, url: str, ref: str = ""
) -> ImplementationFile:
    """A new version fetched from a git repository by a worker (owner only); PENDING until fetched."""
    from .git import REF_RE

    if implementation.owner_id != user.pk:
        raise ApplicationError(
            "Only the implementation's owner can import files.", code="implementation:forbidden", status=403
        )
    url = (url or "").strip()
    if not url.lower().startswith(("http://", "https://")) or len(url) > 500:
        raise ApplicationError(
            "Give the http(s) URL of a git repository, e.g. https://git.example.org/team/bell.git.", code="git:bad-url"
        )
    ref = (ref or "").strip()
    if ref and not REF_RE.match(ref):
        raise ApplicationError(f"{ref!r} is not a branch or tag name.", code="git:bad-ref")
    with transaction.atomic():
        row = ImplementationFile.objects.create(
            implementation=implementation,
            version=_next_version(implementation),
            filename=url.rstrip("/").rsplit("/", 1)[-1][:200] or "repository",
            source=FileSource.GIT,
            status=FileStatus.PENDING,
            git_url=url,
            git_ref=ref,
            created_by=user,
        )
        Implementation.objects.filter(pk=implementation.pk).update(git_url=url)
        from .tasks import fetch_implementation_git

        transaction.on_commit(lambda: fetch_implementation_git.delay(str(row.pk)), robust=True)
    return row


def implementation_git_fetch(*, file_id: Any) -> ImplementationFile | None:
    """The worker's part of a git import: claim the PENDING file, fetch, check, store (idempotent)."""
    from .git import GitFetchError, fetch_repository

    claimed = ImplementationFile.objects.filter(pk=file_id, status=FileStatus.PENDING).update(
        status=FileStatus.FETCHING
    )
    row = ImplementationFile.objects.filter(pk=file_id).first()
    if not claimed or row is None:
        return row
    try:
        fetched = fetch_repository(
            row.git_url,
            ref=row.git_ref,
            allow_private=settings.PLANQK_EXTERNAL_ALLOW_PRIVATE,
            timeout=float(getattr(settings, "PLANQK_GIT_TIMEOUT", 120)),
            max_bytes=int(getattr(settings, "PLANQK_UPLOAD_MAX_UNCOMPRESSED_MB", 500)) * 1024 * 1024,
        )
        file = ContentFile(fetched.archive, name="repository.zip")
        summary = _check_archive(file)
        name, size, sha = _store(implementation_id=row.implementation_id, file_id=row.pk, file=file)
    except GitFetchError as exc:
        return _fail(row, exc.message, exc.code)
    except ApplicationError as exc:
        return _fail(row, exc.message, exc.code)
    except Exception:
        import logging

        logging.getLogger(__name__).exception("git import %s failed", row.pk)
        return _fail(row, "The repository could not be imported (a platform error).", "platform:git-import")
    ImplementationFile.objects.filter(pk=row.pk, status=FileStatus.FETCHING).update(
        status=FileStatus.READY,
        archive=name,
        size=size,
        sha256=sha,
        requirements=summary.requirements,
        has_api_spec=summary.api_spec is not None,
        git_commit=fetched.commit,
    )
    row.refresh_from_db()
    return row


def _fail(row: ImplementationFile, message: str, code: str) -> ImplementationFile:
    ImplementationFile.objects.filter(pk=row.pk, status=FileStatus.FETCHING).update(
        status=FileStatus.FAILED, error=message[:2000], error_code=code[:64]
    )
    row.refresh_from_db()
    return row


def implementation_git_reap() -> int:
    """Fail git imports a dead worker left FETCHING for an hour; send stale PENDING ones again (the reaper)."""
    from datetime import timedelta

    from django.utils import timezone

    from .tasks import fetch_implementation_git

    now = timezone.now()
    failed = ImplementationFile.objects.filter(
        status=FileStatus.FETCHING, created_at__lt=now - timedelta(hours=1)
    ).update(
        status=FileStatus.FAILED, error="The import was interrupted; import again.", error_code="platform:interrupted"
    )
    # A lost broker message leaves an import PENDING: send it again (the task claims it once).
    stale = ImplementationFile.objects.filter(status=FileStatus.PENDING, created_at__lt=now - timedelta(minutes=5))
    for file_id in stale.values_list("pk", flat=True):
        fetch_implementation_git.delay(str(file_id))
    return failed


# --- Create Service from a file ------------------------------------------------------------------


def _service_name(*, owner: Any, implementation: Implementation) -> str:
    from services.models import Service

    base = slugify(implementation.name)[:56].strip("-") or "implementation"
    taken = set(Service.objects.filter(owner=owner, name__startswith=base).values_list("name", flat=True))
    if base not in taken:
        return base
    for number in range(2, 1000):
        candidate = f"{base}-{number}"
        if candidate not in taken:
            return candidate
    return f"{base[:48]}-{uuid.uuid4().hex[:6]}"


def service_from_implementation_file(*, file: ImplementationFile, user: Any) -> tuple[Any, bool]:
    """Create Service next to a file: ``(service, created)``.

    The service is owned by ``user`` (who must be able to see the implementation: 404 otherwise),
    made from the file's archive with a Free plan, not published, and built; name and
    description come from the implementation. A user who already made a service from this file
    gets that one back (``created`` False), so clicking twice does not make two.
    """
    from django.core.files.storage import default_storage

    from services.services import service_create

    file = selectors.implementation_file_get_visible(user=user, file_id=file.pk)
    if not file.is_runnable:
        raise ApplicationError(
            f"Version {file.version} of this implementation has no usable archive ({file.get_status_display()}).",
            code="implementation:file-not-ready",
            status=409,
        )
    existing = selectors.service_from_file(user=user, file=file)
    if existing is not None:
        return existing, False
    implementation = file.implementation
    with default_storage.open(file.archive, "rb") as stored:
        content = stored.read()
    link = f"/algorithms/implementations/{implementation.pk}/"
    origin_line = (
        f"Created from the implementation [{implementation.name}]({link}) of "
        f"{implementation.algorithm.name}, file version {file.version}."
    )
    description = f"{implementation.description}\n\n{origin_line}" if implementation.description else origin_line
    with transaction.atomic():
        service = service_create(
            owner=user,
            name=_service_name(owner=user, implementation=implementation),
            title=f"{implementation.name}"[:120],
            description=description[:MAX_DESCRIPTION],
            archive=content,
        )
        ServiceOrigin.objects.create(service=service, implementation=implementation, file=file)
    return service, True
