"""Reads for algorithms and implementations, scoped to the requesting user.

Who may see an implementation is decided here, once, for every road (pages, REST, Create
Service, Create Job, the CLI): its owner; the users it is shared with when SHARED; anyone logged
in when PUBLIC. An implementation someone may not see does not exist for them (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, Q, QuerySet

from planqk_portal.errors import ApplicationError

from .models import Algorithm, FileStatus, Implementation, ImplementationFile, ServiceOrigin, Visibility


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def visible_q(user: Any, prefix: str = "") -> Q:
    """The visibility rule as a filter (``prefix`` for lookups through a relation, e.g. ``implementation__``)."""
    if user is None or not user.is_authenticated:
        return Q(pk__in=[])
    shared = Q(**{f"{prefix}visibility": Visibility.SHARED, f"{prefix}shares__user": user})
    return Q(**{f"{prefix}owner": user}) | Q(**{f"{prefix}visibility": Visibility.PUBLIC}) | shared


def algorithm_list(*, user: Any, search: str = "", problem_class: str = "", tag: str = "") -> QuerySet[Algorithm]:
    """Algorithms matching a search (name, summary, description), a problem class and a tag."""
    algorithms = Algorithm.objects.all()
    search = (search or "").strip()
    if search:
        algorithms = algorithms.filter(
            Q(name__icontains=search) | Q(summary__icontains=search) | Q(description__icontains=search)
        )
    if problem_class:
        algorithms = algorithms.filter(problem_class=problem_class)
    if tag:
        algorithms = algorithms.filter(tags__name=tag)
    visible = Implementation.objects.filter(visible_q(user)).values("pk")
    return (
        algorithms.annotate(
            implementation_count=Count("implementations", filter=Q(implementations__in=visible), distinct=True)
        )
        .prefetch_related("tags")
        .order_by("name")
        .distinct()
    )


def algorithm_get(*, algorithm_id: Any) -> Algorithm:
    """One algorithm (algorithms are readable by anyone logged in); 404 ``algorithm:not-found``."""
    pk = _uuid(algorithm_id)
    algorithm = Algorithm.objects.filter(pk=pk).prefetch_related("tags").first() if pk else None
    if algorithm is None:
        raise ApplicationError("No such algorithm.", code="algorithm:not-found", status=404)
    return algorithm


def implementation_list_visible(*, user: Any, algorithm: Algorithm | None = None) -> QuerySet[Implementation]:
    """The implementations ``user`` may see (and use), optionally of one algorithm."""
    implementations = Implementation.objects.filter(visible_q(user))
    if algorithm is not None:
        implementations = implementations.filter(algorithm=algorithm)
    ids = implementations.values("pk")
    return (
        Implementation.objects.filter(pk__in=ids)
        .select_related("algorithm", "owner")
        .order_by("algorithm__name", "name")
    )


def implementation_get_visible(*, user: Any, implementation_id: Any) -> Implementation:
    """One implementation ``user`` may see; another user's private one is 404 ``implementation:not-found``."""
    pk = _uuid(implementation_id)
    implementation = implementation_list_visible(user=user).filter(pk=pk).first() if pk else None
    if implementation is None:
        raise ApplicationError("No such implementation.", code="implementation:not-found", status=404)
    return implementation


def implementation_get_owned(*, user: Any, implementation_id: Any) -> Implementation:
    """An implementation ``user`` owns: 404 when they cannot see it, 403 when they only see it."""
    implementation = implementation_get_visible(user=user, implementation_id=implementation_id)
    if implementation.owner_id != user.pk:
        raise ApplicationError(
            "Only the implementation's owner can change it.", code="implementation:forbidden", status=403
        )
    return implementation


def implementation_files(*, implementation: Implementation) -> QuerySet[ImplementationFile]:
    """All versions of an implementation's code, newest first."""
    return implementation.files.order_by("-version")


def implementation_file_latest_runnable(*, implementation: Implementation) -> ImplementationFile | None:
    return implementation.files.filter(status=FileStatus.READY).exclude(archive="").order_by("-version").first()


def implementation_files_latest_runnable(*, implementations: list[Implementation]) -> dict[Any, ImplementationFile]:
    """``{implementation id: its latest runnable file}`` in one query (lists show one file each)."""
    files = (
        ImplementationFile.objects.filter(implementation__in=implementations, status=FileStatus.READY)
        .exclude(archive="")
        .order_by("implementation_id", "-version")
    )
    latest: dict[Any, ImplementationFile] = {}
    for file in files:
        latest.setdefault(file.implementation_id, file)
    return latest


def implementation_file_get_visible(*, user: Any, file_id: Any) -> ImplementationFile:
    """A file of an implementation ``user`` may see; 404 ``implementation:not-found`` otherwise."""
    pk = _uuid(file_id)
    file = (
        ImplementationFile.objects.filter(pk=pk, implementation__in=implementation_list_visible(user=user).values("pk"))
        .select_related("implementation", "implementation__algorithm")
        .first()
        if pk
        else None
    )
    if file is None:
        raise ApplicationError("No such implementation file.", code="implementation:not-found", status=404)
    return file


def implementation_usage(*, implementation: Implementation) -> dict[str, int]:
    """How many services were created from the implementation and how many jobs ran on them."""
    from jobs.models import Job

    return {
        "services": ServiceOrigin.objects.filter(implementation=implementation).count(),
        "jobs": Job.objects.filter(service__origin__implementation=implementation).count(),
    }


def service_from_file(*, user: Any, file: ImplementationFile) -> Any:
    """The user's (not deleted) service created from ``file``, if any."""
    origin = (
        ServiceOrigin.objects.filter(file=file, service__owner=user, service__deleted_at__isnull=True)
        .select_related("service")
        .order_by("-created_at")
        .first()
    )
    return origin.service if origin else None


def services_from_files(*, user: Any, files: list[ImplementationFile]) -> dict[Any, Any]:
    """``{file id: service}`` of the user's services created from these files."""
    origins = (
        ServiceOrigin.objects.filter(file__in=files, service__owner=user, service__deleted_at__isnull=True)
        .select_related("service")
        .order_by("created_at")
    )
    return {origin.file_id: origin.service for origin in origins}
