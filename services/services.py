"""Writes for services: creating services and versions, publishing, deleting, cancelling and retrying builds.

A version's build runs in :mod:`services.builds` (the Celery task's body); the writes here only
start it (on commit) or ask it to stop, each with a conditional update on the state it expects.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from marketplace.services import PlanTerms, pricing_plan_create, pricing_plan_retire, pricing_plans_create_initial
from payments.selectors import card_required_check
from planqk_portal.errors import ApplicationError
from planqk_portal.errors import full_clean as _full_clean

from . import selectors, uploads
from .models import (
    BuildLogChunk,
    BuildStatus,
    Lifecycle,
    PlanKind,
    QuantumBackend,
    Service,
    ServiceVersion,
    SourceType,
    service_name_validator,
)

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "1.0.0"
VERSION_RE = re.compile(
    r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
MAX_DESCRIPTION = 20_000
EXTERNAL_RUNTIME = "external"

FREE_PLAN = PlanTerms(name="Free", kind=PlanKind.FREE, price_cents=0, requests_per_minute=120, max_concurrent=5)

_PROVIDER_FOR_BACKEND = {QuantumBackend.IBM: "IBM", QuantumBackend.DWAVE: "DWAVE"}


# --- helpers -------------------------------------------------------------------------------------


def _enqueue_build(version_id: uuid.UUID) -> None:
    from hosts.routing import queue_for_build

    from .tasks import build_service_version

    queue = queue_for_build(ServiceVersion.objects.select_related("service").get(pk=version_id))
    # robust: a broker outage must not turn a committed upload into an error page; the reaper
    # enqueues builds that stay PENDING.
    transaction.on_commit(lambda: build_service_version.apply_async(args=[str(version_id)], queue=queue), robust=True)


def parse_version(value: str | None) -> str | None:
    """A provider's version label, validated (``1.2.3`` or ``1.2.3-beta.1``; a leading ``v`` is dropped)."""
    if value is None:
        return None
    label = str(value).strip()
    if not label:
        return None
    if label[:1] in ("v", "V"):
        label = label[1:]
    if len(label) > 32 or not VERSION_RE.match(label):
        raise ApplicationError(
            f"{value!r} is not a version number: use MAJOR.MINOR.PATCH such as 1.0.0 or 1.2.0-beta.1.",
            code="version:invalid",
        )
    return label


def _version_key(label: str) -> tuple[int, int, int]:
    match = VERSION_RE.match(label)
    if not match:
        return (-1, -1, -1)
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def next_version(existing: list[str]) -> str:
    """The next patch number after the highest of ``existing`` (``1.0.0`` for the first)."""
    if not existing:
        return DEFAULT_VERSION
    major, minor, patch = max(_version_key(label) for label in existing)
    if major < 0:
        return DEFAULT_VERSION
    taken = set(existing)
    candidate = f"{major}.{minor}.{patch + 1}"
    while candidate in taken:
        patch += 1
        candidate = f"{major}.{minor}.{patch + 1}"
    return candidate


@dataclass(frozen=True)
class Resources:
    memory_mb: int
    cpus: Decimal
    timeout_seconds: int


def resource_bounds() -> dict[str, tuple[Any, Any, Any]]:
    """(minimum, default, maximum) of each resource, from the ``PLANQK_JOB_*`` settings."""
    return {
        "memory_mb": (64, settings.PLANQK_JOB_DEFAULT_MEMORY_MB, settings.PLANQK_JOB_MAX_MEMORY_MB),
        "cpus": (
            Decimal("0.1"),
            Decimal(str(settings.PLANQK_JOB_DEFAULT_CPUS)),
            Decimal(str(settings.PLANQK_JOB_MAX_CPUS)),
        ),
        "timeout_seconds": (5, settings.PLANQK_JOB_DEFAULT_TIMEOUT, settings.PLANQK_JOB_MAX_TIMEOUT),
    }


def check_resources(*, memory_mb: Any = None, cpus: Any = None, timeout_seconds: Any = None) -> Resources:
    """Resources with defaults filled in; out of bounds is a clear error, never a silent clamp."""
    bounds = resource_bounds()
    labels = {"memory_mb": "Memory (MB)", "cpus": "CPUs", "timeout_seconds": "Timeout (seconds)"}
    values: dict[str, Any] = {}
    for key, raw in (("memory_mb", memory_mb), ("cpus", cpus), ("timeout_seconds", timeout_seconds)):
        low, default, high = bounds[key]
        if raw is None or raw == "":
            values[key] = default
            continue
        try:
            if key == "cpus":
                value: Any = Decimal(str(raw)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                if not value.is_finite():
                    raise InvalidOperation
            else:
                value = int(str(raw))
        except (InvalidOperation, ValueError):
            raise ApplicationError(
                f"{labels[key]} must be a number, got {raw!r}.", code="service:bad-resources"
            ) from None
        if not low <= value <= high:
            raise ApplicationError(
                f"{labels[key]} must be between {low} and {high}, got {raw}.", code="service:bad-resources"
            )
        values[key] = value
    return Resources(**values)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the service a name.", code="service:bad-name")
    try:
        service_name_validator(name)
    except ValidationError:
        suggestion = slugify(name)[:64].strip("-")
        hint = f" Try {suggestion!r}." if suggestion else ""
        raise ApplicationError(
            f"{name!r} cannot be a service name: use lower-case letters, digits and dashes (at most 64), starting "
            f"and ending with a letter or digit; it becomes part of the service URL.{hint}",
            code="service:bad-name",
        ) from None
    return name


def _check_backend(*, owner: Any, quantum_backend: str) -> str:
    from accounts.selectors import provider_has_token

    backend = (quantum_backend or QuantumBackend.NONE).strip().upper()
    if backend not in QuantumBackend.values:
        raise ApplicationError(
            f"Unknown quantum backend {quantum_backend!r}; choose one of {', '.join(QuantumBackend.values)}.",
            code="service:bad-backend",
        )
    provider = _PROVIDER_FOR_BACKEND.get(QuantumBackend(backend))
    if provider and not provider_has_token(user=owner, provider=provider):
        raise ApplicationError(
            f"The {QuantumBackend(backend).label} backend needs your {QuantumBackend(backend).label} token: add it "
            "under Settings → Provider tokens (/settings/providers/) first, or choose NONE.",
            code="service:provider-token-missing",
        )
    return backend


def _check_external_url(url: str) -> str:
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ApplicationError(
            f"{url!r} is not an http(s) URL of a running service, e.g. https://quantum.example.org/my-service/.",
            code="service:bad-url",
        ) from None
    return url


def _read_spec(api_spec: Any) -> bytes | None:
    """The bytes of an uploaded spec (a file, bytes or text), or None when none was given."""
    if api_spec is None or api_spec == "":
        return None
    if isinstance(api_spec, bytes):
        return api_spec
    if isinstance(api_spec, str):
        return api_spec.encode("utf-8")
    size = getattr(api_spec, "size", None)
    if size is not None and size > uploads.MAX_SPEC_BYTES:
        raise ApplicationError(
            f"The API spec is larger than {uploads.MAX_SPEC_BYTES // 1024} KB.", code="spec:too-large", status=413
        )
    api_spec.seek(0)
    return api_spec.read(uploads.MAX_SPEC_BYTES + 1)


def _choose_spec(*, api_spec: Any, summary: uploads.ArchiveSummary | None, title: str) -> str:
    raw = _read_spec(api_spec)
    if raw is not None:
        return _check_input_schemas(uploads.validate_api_spec(raw, source="The API spec"), "The API spec")
    if summary is not None and summary.api_spec is not None:
        source = f"{summary.api_spec_name} in the archive"
        return _check_input_schemas(uploads.validate_api_spec(summary.api_spec, source=source), source)
    return uploads.default_api_spec(title=title)


def _check_input_schemas(spec: str, source: str) -> str:
    """Compile the spec's data/params schemas now: every execution is checked against them, so an
    unusable one is the provider's error at upload, not a surprise at the first call."""
    from planqk_service_api.schema import SchemaError, input_schemas_of

    try:
        input_schemas_of(spec)
    except SchemaError as exc:
        raise ApplicationError(
            f"{source}: the input schemas of POST / cannot be used: {exc}.", code="spec:bad-schema", status=400
        ) from None
    return spec


def _as_file(archive: Any) -> IO[bytes]:
    if isinstance(archive, bytes | bytearray):
        return ContentFile(bytes(archive), name="user_code.zip")
    if not hasattr(archive, "read") or not hasattr(archive, "seek"):
        raise ApplicationError("Upload the user code as a zip file.", code="upload:missing")
    return archive


def _store_archive(*, service_id: uuid.UUID, version_id: uuid.UUID, file: IO[bytes]) -> str:
    """Store a checked archive; returns its storage name (the build reads it from there)."""
    from django.core.files.storage import default_storage

    file.seek(0)
    return default_storage.save(f"service-archives/{service_id}/{version_id}.zip", File(file))


def _delete_archive(name: str) -> None:
    from django.core.files.storage import default_storage

    try:
        default_storage.delete(name)
    except OSError:
        logger.warning("could not delete the stored archive %s", name)


def _new_version(
    *,
    service: Service,
    user: Any,
    label: str | None,
    version_id: uuid.UUID,
    archive_name: str,
    summary: uploads.ArchiveSummary | None,
    api_spec: str,
    external_url: str = "",
) -> ServiceVersion:
    """Create a version row under a lock on its service, so numbering is race-free."""
    Service.objects.select_for_update().filter(pk=service.pk).first()
    existing = list(ServiceVersion.objects.filter(service=service).values_list("version", flat=True))
    if label is None:
        label = next_version(existing)
    elif label in existing:
        raise ApplicationError(
            f"Version {label} of {service.name} exists already; choose another number or leave it empty "
            f"for {next_version(existing)}.",
            code="version:duplicate",
            status=409,
        )
    now = timezone.now()
    version = ServiceVersion(
        id=version_id,
        service=service,
        version=label,
        api_spec=api_spec,
        requirements=summary.requirements if summary else "",
        archive=archive_name,
        created_by=user,
    )
    if external_url:
        # Nothing to build: the platform fronts a service that runs elsewhere.
        version.status = BuildStatus.READY
        version.runtime = EXTERNAL_RUNTIME
        version.build_handle = {"runtime": EXTERNAL_RUNTIME, "external_url": external_url}
        version.build_started_at = now
        version.build_ended_at = now
    _full_clean(version)
    try:
        with transaction.atomic():
            version.save(force_insert=True)
    except IntegrityError:
        raise ApplicationError(
            f"Version {label} of {service.name} exists already.", code="version:duplicate", status=409
        ) from None
    if external_url:
        service_version_promote(version=version)
    else:
        _enqueue_build(version.id)
    return version


# --- services ------------------------------------------------------------------------------------


def service_create(
    *,
    owner: Any,
    name: str,
    title: str = "",
    description: str = "",
    quantum_backend: str = QuantumBackend.NONE,
    archive: Any = None,
    external_url: str = "",
    api_spec: Any = None,
    memory_mb: Any = None,
    cpus: Any = None,
    timeout_seconds: Any = None,
    version: str | None = None,
    skip_example_run: bool = False,
    plans: list[Any] | None = None,
) -> Service:
    """Create a service with its pricing plans and its first version (a build, or an external URL).

    ``plans`` are :class:`marketplace.services.PlanTerms` (see ``plan_terms_list_check``); without
    them the service offers one Free plan.

    Everything is checked before anything is stored: the name, the backend (IBM and D-Wave need
    the owner's provider token), the resources, the archive (see :mod:`services.uploads`) or the
    URL, and the API spec (the given file, else the archive's ``openapi-spec.yml``, else the
    template's default). The owner needs a valid card first (payments), as on PlanQK.
    """
    card_required_check(user=owner, action="Creating a service")
    name = _check_name(name)
    plan_terms = list(plans) if plans else [FREE_PLAN]
    title = (title or "").strip()
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ApplicationError(
            f"The description can be at most {MAX_DESCRIPTION} characters.", code="service:description-too-long"
        )
    backend = _check_backend(owner=owner, quantum_backend=quantum_backend)
    resources = check_resources(memory_mb=memory_mb, cpus=cpus, timeout_seconds=timeout_seconds)
    label = parse_version(version)
    has_archive = archive is not None and archive != ""
    external_url = (external_url or "").strip()
    if has_archive and external_url:
        raise ApplicationError("Give either a zip file or a URL, not both.", code="service:ambiguous-source")
    if not has_archive and not external_url:
        raise ApplicationError(
            "Upload your user_code.zip (Import from file) or give the URL of your running service (Import from URL).",
            code="upload:missing",
        )
    if Service.objects.filter(owner=owner, name=name).exists():
        raise ApplicationError(
            f"You have a service called {name!r} already; choose another name, or upload a new version of it.",
            code="service:name-taken",
            status=409,
        )
    summary = None
    file = None
    if has_archive:
        file = _as_file(archive)
        summary = uploads.inspect_archive(file)
    else:
        external_url = _check_external_url(external_url)
    spec = _choose_spec(api_spec=api_spec, summary=summary, title=title or name)

    service_id, version_id = uuid.uuid4(), uuid.uuid4()
    archive_name = _store_archive(service_id=service_id, version_id=version_id, file=file) if file else ""
    try:
        service = _create_rows(
            service=Service(
                id=service_id,
                owner=owner,
                name=name,
                title=title,
                description=description,
                quantum_backend=backend,
                source=SourceType.FILE if has_archive else SourceType.URL,
                external_url=external_url,
                memory_mb=resources.memory_mb,
                cpus=resources.cpus,
                timeout_seconds=resources.timeout_seconds,
                skip_example_run=bool(skip_example_run),
            ),
            label=label,
            version_id=version_id,
            archive_name=archive_name,
            summary=summary,
            spec=spec,
            plan_terms=plan_terms,
        )
    except BaseException:
        if archive_name:
            _delete_archive(archive_name)
        raise
    service.refresh_from_db()
    return service


def _create_rows(
    *,
    service: Service,
    label: str | None,
    version_id: uuid.UUID,
    archive_name: str,
    summary: uploads.ArchiveSummary | None,
    spec: str,
    plan_terms: list[Any],
) -> Service:
    with transaction.atomic():
        _full_clean(service, exclude=["published_version"])
        try:
            with transaction.atomic():
                service.save(force_insert=True)
        except IntegrityError:
            raise ApplicationError(
                f"You have a service called {service.name!r} already.", code="service:name-taken", status=409
            ) from None
        pricing_plans_create_initial(service=service, terms_list=plan_terms)
        _new_version(
            service=service,
            user=service.owner,
            label=label,
            version_id=version_id,
            archive_name=archive_name,
            summary=summary,
            api_spec=spec,
            external_url=service.external_url,
        )
    return service


def service_update(
    *,
    service: Service,
    title: str | None = None,
    description: str | None = None,
    quantum_backend: str | None = None,
    memory_mb: Any = None,
    cpus: Any = None,
    timeout_seconds: Any = None,
    retry_on_host_loss: bool | None = None,
) -> Service:
    """Change a service's properties (its name stays: it is part of every caller's URL)."""
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        if title is not None:
            service.title = title.strip()
        if description is not None:
            if len(description) > MAX_DESCRIPTION:
                raise ApplicationError(
                    f"The description can be at most {MAX_DESCRIPTION} characters.",
                    code="service:description-too-long",
                )
            service.description = description.strip()
        if quantum_backend is not None and quantum_backend != service.quantum_backend:
            service.quantum_backend = _check_backend(owner=service.owner, quantum_backend=quantum_backend)
        resources = check_resources(
            memory_mb=service.memory_mb if memory_mb is None else memory_mb,
            cpus=service.cpus if cpus is None else cpus,
            timeout_seconds=service.timeout_seconds if timeout_seconds is None else timeout_seconds,
        )
        service.memory_mb = resources.memory_mb
        service.cpus = resources.cpus
        service.timeout_seconds = resources.timeout_seconds
        if retry_on_host_loss is not None:
            service.retry_on_host_loss = bool(retry_on_host_loss)
        _full_clean(service, exclude=["published_version"])
        service.save()
    return service


def service_version_create(
    *,
    service: Service,
    user: Any,
    archive: Any = None,
    external_url: str = "",
    api_spec: Any = None,
    version: str | None = None,
    skip_example_run: bool | None = None,
) -> ServiceVersion:
    """Upload a new version: it builds beside the running one and replaces it once READY.

    Without an API spec the new version keeps the archive's own spec, else the previous
    version's, else the template's. ``skip_example_run`` (None: unchanged) sets the service's
    choice for its builds' smoke test, which this version's build is the first to follow.
    """
    label = parse_version(version)
    summary = None
    file = None
    external_url = (external_url or "").strip()
    if service.source == SourceType.URL:
        if archive:
            raise ApplicationError(
                "This service fronts an external URL; give the new version's URL instead of a zip.",
                code="service:ambiguous-source",
            )
        external_url = _check_external_url(external_url or service.external_url)
    else:
        if external_url:
            raise ApplicationError(
                "This service is built from uploaded code; upload a zip file for the new version.",
                code="service:ambiguous-source",
            )
        if archive is None or archive == "":
            raise ApplicationError("Upload the new version's user_code.zip.", code="upload:missing")
        file = _as_file(archive)
        summary = uploads.inspect_archive(file)
    raw_spec = _read_spec(api_spec)
    if raw_spec is not None or (summary is not None and summary.api_spec is not None):
        spec = _choose_spec(api_spec=raw_spec, summary=summary, title=service.display_name)
    else:
        previous = selectors.service_version_latest(service=service)
        spec = (
            previous.api_spec
            if previous and previous.api_spec
            else uploads.default_api_spec(title=service.display_name)
        )
    version_id = uuid.uuid4()
    archive_name = _store_archive(service_id=service.id, version_id=version_id, file=file) if file else ""
    try:
        with transaction.atomic():
            new = _new_version(
                service=service,
                user=user,
                label=label,
                version_id=version_id,
                archive_name=archive_name,
                summary=summary,
                api_spec=spec,
                external_url=external_url,
            )
            if external_url and external_url != service.external_url:
                Service.objects.filter(pk=service.pk).update(external_url=external_url)
            if skip_example_run is not None and bool(skip_example_run) != service.skip_example_run:
                Service.objects.filter(pk=service.pk).update(skip_example_run=bool(skip_example_run))
                service.skip_example_run = bool(skip_example_run)
    except BaseException:
        if archive_name:
            _delete_archive(archive_name)
        raise
    return new


def service_version_promote(*, version: ServiceVersion) -> None:
    """Make a READY version the service's published one unless a newer callable version is.

    Call it inside a transaction: it locks the service row (the build's finish and publishing race on it).
    """
    service = Service.objects.select_for_update().get(pk=version.service_id)
    current = service.published_version
    fields = []
    if current is None or not current.is_callable or current.created_at <= version.created_at:
        service.published_version = version
        fields.append("published_version")
    if service.publish_on_ready:
        if service.lifecycle == Lifecycle.CREATED:
            service.lifecycle = service.publish_on_ready
            fields.append("lifecycle")
        service.publish_on_ready = ""
        fields.append("publish_on_ready")
    if fields:
        service.save(update_fields=[*fields, "updated_at"])


# --- lifecycle -----------------------------------------------------------------------------------


def _require_callable_version(service: Service) -> ServiceVersion:
    version = selectors.service_version_latest_callable(service=service)
    if version is None:
        raise ApplicationError(
            "Publishing needs a version whose build is READY. Wait for the build to finish, or fix the "
            "failure shown in its log and upload a new version.",
            code="service:no-ready-version",
            status=409,
        )
    return version


def _set_lifecycle(*, service: Service, lifecycle: str, version: ServiceVersion | None = None) -> Service:
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if lifecycle != Lifecycle.CREATED:
            if version is not None:
                version = ServiceVersion.objects.filter(pk=version.pk, service=locked).first()
                if version is None or not version.is_callable:
                    raise ApplicationError(
                        "The default version must be one of this service's READY versions.",
                        code="service:version-not-callable",
                        status=409,
                    )
            else:
                version = _require_callable_version(locked)
            if locked.published_version_id != version.pk:
                locked.published_version = version
        elif locked.lifecycle == Lifecycle.CREATED:
            raise ApplicationError("The service is not published.", code="service:not-published", status=409)
        locked.lifecycle = lifecycle
        _full_clean(locked)
        locked.save(update_fields=["lifecycle", "published_version", "updated_at"])
    return locked


def service_publish_internal(*, service: Service) -> Service:
    """CREATED (or PUBLISHED) → ACCESSIBLE: callable by the owner's own applications."""
    return _set_lifecycle(service=service, lifecycle=Lifecycle.ACCESSIBLE)


def service_publish(*, service: Service) -> Service:
    """→ PUBLISHED: listed in the marketplace for everyone to subscribe."""
    return _set_lifecycle(service=service, lifecycle=Lifecycle.PUBLISHED)


def service_unpublish(*, service: Service) -> Service:
    """ACCESSIBLE or PUBLISHED → CREATED: no longer offered to subscribers."""
    return _set_lifecycle(service=service, lifecycle=Lifecycle.CREATED)


def service_release(
    *,
    service: Service,
    actor: Any,
    lifecycle: str,
    version: ServiceVersion,
    keep_plan_ids: list[int],
    new_plans: list[PlanTerms],
) -> Service:
    """The publish flow's confirm: new plans, the plans not kept retired, the default version, the visibility.

    All or nothing; plans change through marketplace.services (so its rules apply), new ones first
    so a published service never has no plan.
    """
    if lifecycle not in (Lifecycle.ACCESSIBLE, Lifecycle.PUBLISHED):
        raise ApplicationError("Choose internal use or the marketplace.", code="service:bad-lifecycle")
    with transaction.atomic():
        for terms in new_plans:
            pricing_plan_create(service=service, actor=actor, terms=terms)
        for plan in (
            service.plans.filter(is_active=True)
            .exclude(pk__in=keep_plan_ids)
            .exclude(name__in=[terms.name for terms in new_plans])
        ):
            pricing_plan_retire(plan=plan, actor=actor)
        if not service.plans.filter(is_active=True).exists():
            raise ApplicationError("Offer at least one pricing plan (Free is enough).", code="plan:none")
        return _set_lifecycle(service=service, lifecycle=lifecycle, version=version)


def service_publish_when_ready(*, service: Service, lifecycle: str = Lifecycle.ACCESSIBLE) -> Service:
    """Publish now if a version is READY, else as soon as one is (the build does it)."""
    if lifecycle not in (Lifecycle.ACCESSIBLE, Lifecycle.PUBLISHED):
        raise ApplicationError("Choose ACCESSIBLE or PUBLISHED.", code="service:bad-lifecycle")
    with transaction.atomic():
        # The build's promotion locks this row too, so one of the two always sees the other.
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if selectors.service_version_latest_callable(service=locked) is not None:
            return _set_lifecycle(service=locked, lifecycle=lifecycle)
        locked.publish_on_ready = lifecycle
        locked.save(update_fields=["publish_on_ready", "updated_at"])
    return locked


def service_delete(*, service: Service) -> None:
    """Delete a service, its versions and its builds; refused while applications are subscribed.

    Ended subscriptions keep their usage (billing history) and point at the service, so a service
    that had subscribers is retired instead: hidden, no longer callable, its name free again.
    """
    from applications.models import Subscription
    from hosts.housekeeping import deleted_versions_record

    with transaction.atomic():
        locked = Service.objects.select_for_update().filter(pk=service.pk, deleted_at__isnull=True).first()
        if locked is None:
            return
        active = Subscription.objects.filter(service=locked, ended_at__isnull=True).count()
        if active:
            raise ApplicationError(
                f"{active} application subscription{'s are' if active != 1 else ' is'} still active. Deleting "
                "would break their callers: unpublish the service and wait until they unsubscribe.",
                code="service:has-subscriptions",
                status=409,
            )
        versions = list(ServiceVersion.objects.filter(service=locked))
        builds = [
            {"runtime": v.runtime, "handle": v.build_handle}
            for v in versions
            if v.build_handle and v.runtime and v.runtime != EXTERNAL_RUNTIME
        ]
        archives = [v.archive.name for v in versions if v.archive]
        now = timezone.now()
        # Hosts that materialised or pulled a build remove their copy at their next housekeeping.
        deleted_versions_record(
            versions=[(v.pk, v.runtime) for v in versions if v.runtime and v.runtime != EXTERNAL_RUNTIME], now=now
        )
        # A build running right now notices this and stops; its result is thrown away.
        ServiceVersion.objects.filter(service=locked, status__in=[BuildStatus.PENDING, BuildStatus.BUILDING]).update(
            cancel_requested=True
        )
        if Subscription.objects.filter(service=locked).exists():
            ServiceVersion.objects.filter(service=locked).update(
                unpublished_at=now, cancel_requested=True, archive="", build_handle=None
            )
            locked.name = f"{locked.name[:40].rstrip('-')}-deleted-{secrets.token_hex(4)}"
            locked.lifecycle = Lifecycle.CREATED
            locked.published_version = None
            locked.deleted_at = now
            locked.save(update_fields=["name", "lifecycle", "published_version", "deleted_at", "updated_at"])
        else:
            try:
                with transaction.atomic():
                    locked.delete()
            except ProtectedError:
                # A subscription arrived after the check above.
                raise ApplicationError(
                    "An application subscribed to this service just now; it cannot be deleted.",
                    code="service:has-subscriptions",
                    status=409,
                ) from None

        def cleanup() -> None:
            from hosts.routing import queue_for_removal

            from .tasks import remove_service_builds

            for name in archives:
                _delete_archive(name)
            # Each runtime's artefacts are removed by a worker that has that runtime.
            by_runtime: dict[str, list[dict[str, Any]]] = {}
            for build in builds:
                by_runtime.setdefault(build["runtime"], []).append(build)
            for runtime, group in by_runtime.items():
                remove_service_builds.apply_async(args=[group], queue=queue_for_removal(runtime))

        transaction.on_commit(cleanup)


# --- cancelling and retrying builds (the pipeline itself is services.builds) ----------------------


def service_version_cancel(*, version: ServiceVersion) -> ServiceVersion:
    """Cancel a build: a PENDING one never starts, a BUILDING one stops within seconds."""
    now = timezone.now()
    stopped = ServiceVersion.objects.filter(pk=version.pk, status=BuildStatus.PENDING).update(
        status=BuildStatus.CANCELLED,
        cancel_requested=True,
        build_ended_at=now,
        build_error="Cancelled before the build started.",
        build_error_code="build:cancelled",
    )
    if not stopped:
        requested = ServiceVersion.objects.filter(pk=version.pk, status=BuildStatus.BUILDING).update(
            cancel_requested=True
        )
        if not requested:
            version.refresh_from_db()
            raise ApplicationError(
                f"The build of {version.version} has finished ({version.status}); there is nothing to cancel.",
                code="build:not-cancellable",
                status=409,
            )
    version.refresh_from_db()
    return version


def service_version_retry(*, version: ServiceVersion) -> ServiceVersion:
    """Build a FAILED or CANCELLED version again, from the archive it was uploaded with."""
    if version.runtime == EXTERNAL_RUNTIME or not version.archive:
        raise ApplicationError("This version has no uploaded code to build.", code="build:not-retryable", status=409)
    with transaction.atomic():
        reset = ServiceVersion.objects.filter(
            pk=version.pk, status__in=[BuildStatus.FAILED, BuildStatus.CANCELLED]
        ).update(
            status=BuildStatus.PENDING,
            cancel_requested=False,
            build_error="",
            build_error_code="",
            build_started_at=None,
            build_ended_at=None,
            build_handle=None,
            unpublished_at=None,
        )
        if not reset:
            version.refresh_from_db()
            raise ApplicationError(
                f"Only a failed or cancelled build can be retried; {version.version} is {version.status}.",
                code="build:not-retryable",
                status=409,
            )
        # A retry starts a fresh log: pollers begin again from 0 after reloading the version.
        BuildLogChunk.objects.filter(version=version).delete()
        _enqueue_build(version.pk)
    version.refresh_from_db()
    return version


def service_version_unpublish(*, version: ServiceVersion) -> ServiceVersion:
    """Stop a version from being callable (its build stays until the service is deleted)."""
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=version.service_id)
        version = ServiceVersion.objects.select_for_update().get(pk=version.pk)
        if version.unpublished_at is not None:
            return version
        others = (
            ServiceVersion.objects.filter(service=service, status=BuildStatus.READY, unpublished_at__isnull=True)
            .exclude(pk=version.pk)
            .order_by("-created_at")
        )
        replacement = others.first()
        if replacement is None and service.lifecycle != Lifecycle.CREATED and version.is_callable:
            raise ApplicationError(
                f"{version.version} is the only callable version of a published service; unpublish the service "
                "first, or wait until a newer version is READY.",
                code="version:last-callable",
                status=409,
            )
        version.unpublished_at = timezone.now()
        version.save(update_fields=["unpublished_at"])
        if service.published_version_id == version.pk:
            service.published_version = replacement
            service.save(update_fields=["published_version", "updated_at"])
    return version
