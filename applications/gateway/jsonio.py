"""The gateway's Django adapter over :mod:`planqk_service_api`, the service API contract.

The contract (job object, timestamps, codes, every check of a request body) lives in that
standard-library package, shared with ``planqk serve``; this module only reads the body off a
Django request (Content-Length, chunked bodies, 411) and turns the package's
``ServiceAPIError`` into the platform's ``ApplicationError``, so views answer as before. The
sizes come from jobs (``input_max_bytes``, ``body_max_bytes``): one setting for every road.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

import planqk_service_api as contract
from jobs.services import body_max_bytes, input_max_bytes
from planqk_portal.errors import ApplicationError
from planqk_service_api import REF_KEYS, ServiceAPIError, codes

__all__ = [
    "REF_KEYS",
    "error_response",
    "json_response",
    "read_json_body",
    "timestamp",
    "with_contract",
]


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(
    code: str,
    detail: str,
    http_status: int,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """``{"code", "detail", ...extra}`` with ``http_status``."""
    return json_response(ServiceAPIError(code, detail, http_status, extra).body(), status=http_status, headers=headers)


def timestamp(value: datetime | None) -> str | None:
    """The contract's ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return contract.timestamp(value)


@contextmanager
def with_contract() -> Iterator[None]:
    """Run the contract's checks: their ``ServiceAPIError`` becomes the platform's ``ApplicationError``."""
    try:
        yield
    except ServiceAPIError as exc:
        raise ApplicationError.from_service_api(exc) from None


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object; every way it can be wrong is a 400, 411 or 413 ApplicationError."""
    limit = input_max_bytes()
    # data and params may each be up to the limit; anything far beyond both is refused unread.
    body_limit = body_max_bytes()
    with with_contract():
        declared = (request.META.get("CONTENT_LENGTH") or "0").strip()
        if not declared.isdigit():  # "-5", "abc", "1e3": not a length (Django would read no body)
            raise ServiceAPIError(codes.INPUT_BAD_CONTENT_LENGTH, "Content-Length is not a number.")
        length = int(declared)
        if length > body_limit:
            contract.check_body_size(length, input_max_bytes=limit)
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not length:
            # Django reads a body without Content-Length as empty; a server that ends the input
            # stream itself (granian, gunicorn: wsgi.input_terminated) lets us read it, capped.
            if not request.META.get("wsgi.input_terminated"):
                raise ServiceAPIError(
                    codes.INPUT_LENGTH_REQUIRED, "Send the request body with a Content-Length header.", 411
                )
            raw = request.META["wsgi.input"].read(body_limit + 1)
        else:
            # Never more than one byte past the limit, whatever Content-Length claimed.
            raw = request.read(body_limit + 1)
        if len(raw) > body_limit:
            contract.check_body_size(len(raw), input_max_bytes=limit, exact=False)
        return contract.parse_body(raw)
