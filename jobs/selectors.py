"""Reads for jobs, always scoped to the requesting user."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from .models import InterimResult, Job, JobLogChunk, JobStatus

logger = logging.getLogger(__name__)

# An API spec is the provider's upload; parsing a huge one for an example is not worth it.
_SPEC_MAX_CHARS = 1024 * 1024


def job_list(*, user: Any, service: Any = None, status: str | None = None) -> QuerySet[Job]:
    """The user's own jobs, newest first, optionally filtered by service and status."""
    jobs = Job.objects.filter(owner=user).select_related("service", "service_version")
    if service:
        jobs = jobs.filter(service=service)
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at")


def job_get(*, user: Any, job_id: Any) -> Job:
    """One of the user's jobs; another user's job does not exist for them (404)."""
    try:
        return Job.objects.select_related("service", "service_version", "result_file", "result_pool").get(
            pk=job_id, owner=user
        )
    except (Job.DoesNotExist, ValueError, TypeError, ValidationError):
        # A malformed id (``?from=not-a-uuid``) is a ValidationError from the UUID field: no such job.
        raise Http404("No such job.") from None


def job_log_chunks(*, job: Job) -> QuerySet[JobLogChunk]:
    return JobLogChunk.objects.filter(job=job).order_by("seq")


def job_interim_results(*, job: Job) -> QuerySet[InterimResult]:
    return InterimResult.objects.filter(job=job).order_by("seq")


def job_status_choices() -> list[tuple[str, str]]:
    return list(JobStatus.choices)


# --- services a user may run -----------------------------------------------------------------


def service_list_usable(*, user: Any) -> QuerySet:
    """Own services plus those any of the user's applications is subscribed to."""
    from services.selectors import service_list_usable as usable

    return usable(user=user)


def service_version_latest_callable(*, service: Any) -> Any:
    """The version a new job of ``service`` runs: the published one, else the newest callable one."""
    from services.selectors import service_version_latest_callable as latest

    return latest(service=service)


def services_with_callable_version(*, user: Any) -> list[tuple[Any, Any]]:
    """``(service, version)`` pairs for Create Job: services admission lets the user run now."""
    from .admission import runnable_services

    pairs = []
    for service in runnable_services(user=user).select_related("published_version").order_by("name"):
        version = service_version_latest_callable(service=service)
        if version is not None:
            pairs.append((service, version))
    return pairs


# --- the example input of a service ----------------------------------------------------------


def _load_spec(text: str) -> dict[str, Any] | None:
    if not text or len(text) > _SPEC_MAX_CHARS:
        return None
    try:
        import yaml

        spec = yaml.safe_load(text)
    except Exception:  # a broken spec simply has no example
        return None
    return spec if isinstance(spec, dict) else None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _resolve(spec: dict[str, Any], value: Any) -> Any:
    ref = value.get("$ref") if isinstance(value, dict) else None
    if isinstance(ref, str) and ref.startswith("#/"):
        return _dig(spec, *ref[2:].split("/"))
    return value


def is_current_generation(version: Any) -> bool:
    from services.models import Generation

    return getattr(version, "generation", Generation.DOCUMENTED) == Generation.CURRENT


def _media_example(spec: dict[str, Any]) -> Any:
    """The ``POST /`` request body's ``example``, else its first ``examples`` entry's value."""
    media = _dig(spec, "paths", "/", "post", "requestBody", "content", "application/json")
    if not isinstance(media, dict):
        return None
    example = media.get("example")
    if example is None and isinstance(media.get("examples"), dict) and media["examples"]:
        first = _resolve(spec, next(iter(media["examples"].values())))
        example = first.get("value") if isinstance(first, dict) else None
    if example is None:
        # Failing both, the request schema's data/params examples (2022 specs write them there).
        schema = _resolve(spec, media.get("schema"))
        props = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(props, dict):
            parts = {}
            for key in ("data", "params"):
                prop = _resolve(spec, props.get(key))
                if isinstance(prop, dict) and "example" in prop:
                    parts[key] = prop["example"]
            example = parts or None
    try:
        json.dumps(example)  # YAML can hold what JSON cannot (dates, sets)
    except (TypeError, ValueError):
        return None
    return example if isinstance(example, dict) else None


def service_version_request_example(*, version: Any) -> tuple[dict | None, dict[str, str]]:
    """The one rule for a version's example call: ``(body, secrets)``, the ``POST /`` body a caller
    sends (2022: ``{"data", "params"}``; current generation: its top-level keys, without
    ``$secrets``/``$tags``) and the example's ``$secrets`` apart (current generation only), or
    ``(None, {})`` when the spec gives no example. Create Job's prefill, Try it, the service
    page's curl and Python examples and the build's smoke test all read it."""
    spec = _load_spec(getattr(version, "api_spec", "") or "")
    example = _media_example(spec) if spec is not None else None
    if example is None:
        return None, {}
    if is_current_generation(version):
        raw = example.get("$secrets")
        secrets = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return {k: v for k, v in example.items() if not str(k).startswith("$")}, secrets
    data, params = example.get("data"), example.get("params")
    data = data if isinstance(data, dict) else None
    params = params if isinstance(params, dict) else None
    if data is None and params is None:
        return None, {}
    return {"data": data or {}, "params": params or {}}, {}


def service_version_example(*, version: Any) -> tuple[dict | None, dict | None]:
    """``(data, params)`` of the version's example call, as ``execution_admit`` takes them: for the
    current generation the whole request object is ``data`` and there are no params. ``(None,
    None)`` when the spec gives no example (or is not readable)."""
    if is_current_generation(version):
        body, _ = service_version_request_example(version=version)
        return body, None
    spec = _load_spec(getattr(version, "api_spec", "") or "")
    example = (_media_example(spec) if spec is not None else None) or {}
    data, params = example.get("data"), example.get("params")
    return (data if isinstance(data, dict) else None), (params if isinstance(params, dict) else None)


# --- data pools ---------------------------------------------------------------------------------


def datapool_files_readable_json(*, user: Any, limit: int = 500) -> list[Any]:
    """JSON files the user can read, for the "load from a data pool" select."""
    from datapools.selectors import datafile_list_json_readable

    return list(datafile_list_json_readable(user=user)[:limit])


def datapool_list_writable(*, user: Any) -> list[Any]:
    """Pools the user may write a result into."""
    from datapools.selectors import datapool_list_writable as writable

    return list(writable(user=user).order_by("name"))
