"""The current service API (Kipu Quantum Hub's, ``planqk-service-sdk`` 2.x and ``qhub-service``).

It sits beside the documented 2022 API at the same address for versions of the current
generation. What its clients send and expect (read off the SDKs' generated clients and
``qhub-serve``, the hub's own local server):

- ``POST /`` takes the input as the body's top-level keys, plus ``$secrets`` (an object of
  strings) and ``$tags`` (a list of strings); :func:`split_request` separates them.
- Every call that answers an execution answers :func:`execution_object`: the 2022 job object plus
  ``type``, ``serviceId``, ``serviceDefinitionId``, ``applicationId`` and ``tags``.
- ``GET /`` is a JSON *list* of executions (the SDKs parse nothing else), newest first, one page
  at a time (:func:`page_request`); :func:`page_headers` tells the page in ``X-Total-Count``
  and ``Link`` headers.
- ``GET /{id}/result`` is HAL (:func:`hal_result`): the service's fields at the top level,
  ``_links`` to ``self``, ``status`` and each result file, ``_embedded.status`` the execution.
- ``GET /{id}/log`` is a list of :func:`log_entries` ``{message, severity, timestamp}``, 204
  while there is none.

The documented API's job object, codes and answers are not changed by anything here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from . import codes
from .errors import ServiceAPIError
from .jobs import job_object

#: ``ServiceVersion.generation`` of versions served with this API (the 2022 one is ``"2022"``).
GENERATION_CURRENT = "current"
GENERATION_DOCUMENTED = "2022"

#: The request's own keys; every other top-level key is the program's input.
SECRETS_KEY = "$secrets"
TAGS_KEY = "$tags"

#: ``GET /``: executions per page unless ``size`` says otherwise, and the most a page holds.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

#: The key a return value that is not a JSON object gets in the HAL result (the SDKs read the
#: result's top-level fields as a dict: ``Result.data()``, ``ResultResponse.model_extra``).
VALUE_KEY = "value"
#: HAL's own keys, which a service's fields never overwrite.
HAL_KEYS = ("_links", "_embedded")

#: Log severities the SDKs know (``LogEntrySeverity``).
SEVERITIES = ("DEBUG", "NOTICE", "INFO", "WARNING", "ERROR")
# A level as Python's logging ("ERROR:root:..."), loguru ("... | ERROR | ...") or bracketed
# ("[WARNING] ...") print it; anything else is INFO.
_LEVEL = re.compile(
    r"^(?:\S+\s+\S+\s+\|\s*|\[)?(DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL|EXCEPTION|TRACE|SUCCESS)\b"
)
_SEVERITY_OF = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "SUCCESS": "INFO",
    "NOTICE": "NOTICE",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "EXCEPTION": "ERROR",
    "CRITICAL": "ERROR",
    "FATAL": "ERROR",
}


def split_request(document: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """``POST /``'s body as ``(input, secrets, tags)``: the input is every key not starting with ``$``.

    ``$secrets`` and ``$tags`` are returned as sent (``None`` when absent): what they may be is
    admission's rule, the same on every road (``jobs.admission``). Other ``$`` keys are the hub's
    own (data pool grants, future options) and never reach the program.
    """
    data = {key: value for key, value in document.items() if not key.startswith("$")}
    return data, document.get(SECRETS_KEY), document.get(TAGS_KEY)


def execution_object(
    *,
    id: Any,
    status: str,
    created_at: datetime | None,
    started_at: datetime | None,
    ended_at: datetime | None,
    service_id: Any = None,
    service_definition_id: Any = None,
    application_id: Any = None,
    tags: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The current API's ``ServiceExecution``: the 2022 job object and what the hub adds to it."""
    execution = job_object(id=id, status=status, created_at=created_at, started_at=started_at, ended_at=ended_at)
    execution.update(
        {
            "type": "MANAGED",
            "serviceId": None if service_id is None else str(service_id),
            "serviceDefinitionId": None if service_definition_id is None else str(service_definition_id),
            "applicationId": None if application_id is None else str(application_id),
            "tags": list(tags or ()),
        }
    )
    return execution


def result_fields(result: Any) -> dict[str, Any]:
    """What a program's return value puts at the top level of the HAL result.

    A JSON object's keys as they are (HAL's ``_links``/``_embedded`` excepted); any other value
    (a number, a string, a list) under ``"value"``; nothing at all for ``None``.
    """
    if result is None:
        return {}
    if isinstance(result, dict):
        return {key: value for key, value in result.items() if key not in HAL_KEYS}
    return {VALUE_KEY: result}


def hal_result(
    *, execution: dict[str, Any], base_url: str, fields: dict[str, Any], files: Iterable[str] = ()
) -> dict[str, Any]:
    """``GET /{id}/result``: ``fields`` at the top level, ``_links`` and ``_embedded.status``.

    ``base_url`` is the service version's address without a trailing slash; file names are
    percent-encoded in their links (the SDKs use the link's name, and ask for it by that name).
    """
    own = f"{base_url.rstrip('/')}/{quote(str(execution['id']), safe='')}"
    links: dict[str, Any] = {"self": {"href": f"{own}/result"}, "status": {"href": own}}
    for name in files:
        if name in links:  # a file named "self" or "status" keeps its file link out of HAL's way
            continue
        links[name] = {"href": f"{own}/result/{quote(name, safe='')}"}
    return {**fields, "_links": links, "_embedded": {"status": execution}}


def failure_fields(*, status: str, code: str, detail: str) -> dict[str, Any]:
    """The top-level fields of a failed, cancelled or unknown execution's HAL result: the
    contract's error shape ``{"code", "detail"}``, as the 2022 API answers it."""
    defaults = {
        "FAILED": "The execution failed.",
        "CANCELLED": "The execution was cancelled.",
        "UNKNOWN": "The execution's outcome is unknown.",
    }
    return {"code": code or status, "detail": detail or defaults.get(status, "The execution did not succeed.")}


def severity(line: str) -> str:
    """The severity of one log line: the level it was printed with, else INFO."""
    match = _LEVEL.match(line.lstrip())
    return _SEVERITY_OF[match.group(1)] if match else "INFO"


def iso_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC (``LogEntry.timestamp`` is a date-time the SDKs parse)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def log_entries(chunks: Iterable[tuple[str, datetime]]) -> list[dict[str, Any]]:
    """``GET /{id}/log``: one ``{message, severity, timestamp}`` per line, oldest first.

    ``chunks`` are the stored log's ``(text, created_at)`` in order; a line carries the time its
    chunk was stored. A line split across two chunks is one entry, with the later time.
    """
    entries: list[dict[str, Any]] = []
    pending = last_stamp = ""
    for text, created_at in chunks:
        pending += text
        *lines, pending = pending.split("\n")
        stamp = iso_timestamp(created_at)
        for line in lines:
            line = line.rstrip("\r")
            entries.append({"message": line, "severity": severity(line), "timestamp": stamp})
        last_stamp = stamp
    if pending.rstrip("\r"):
        line = pending.rstrip("\r")
        entries.append({"message": line, "severity": severity(line), "timestamp": last_stamp})
    return entries


def page_request(page: str | None, size: str | None) -> tuple[int, int]:
    """``GET /?page=&size=`` (page from 0, as the hub's APIs count): 400 ``input:bad-page`` unless
    both are whole numbers, ``page`` at least 0 and ``size`` 1 to :data:`MAX_PAGE_SIZE`."""
    try:
        number = 0 if page in (None, "") else int(page)
        count = DEFAULT_PAGE_SIZE if size in (None, "") else int(size)
    except ValueError:
        number = count = -1
    if number < 0 or number > 1_000_000 or not 1 <= count <= MAX_PAGE_SIZE:
        raise ServiceAPIError(
            codes.INPUT_BAD_PAGE,
            f"page must be a whole number from 0 and size one from 1 to {MAX_PAGE_SIZE}.",
        )
    return number, count


def page_headers(*, base_url: str, page: int, size: int, total: int) -> dict[str, str]:
    """``X-Total-Count`` and an RFC 8288 ``Link`` header to the neighbouring pages of ``GET /``."""
    root = base_url.rstrip("/") + "/"
    links = []
    if (page + 1) * size < total:
        links.append(f'<{root}?page={page + 1}&size={size}>; rel="next"')
    if page > 0:
        links.append(f'<{root}?page={min(page - 1, max(0, (total - 1) // size))}&size={size}>; rel="prev"')
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ", ".join(links)
    return headers
