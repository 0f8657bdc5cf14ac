"""Reading gateway request bodies safely and writing the contract's JSON answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

from jobs.services import INPUT_MAX_DEPTH as MAX_DEPTH
from jobs.services import body_max_bytes, input_max_bytes, json_problem
from planqk_portal.errors import ApplicationError

_TIMESTAMP = "%Y-%m-%d %H:%M:%S"
REF_KEYS = ("dataPoolId", "dataSourceDescriptorId", "fileId")


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
    return json_response({**(extra or {}), "code": code, "detail": detail}, status=http_status, headers=headers)


def timestamp(value: datetime | None) -> str | None:
    """The contract's ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return value.astimezone(UTC).strftime(_TIMESTAMP) if value else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_document(value: Any, where: str) -> None:
    """Depth and character checks (jobs' one rule for what a job's JSON may hold), as a 400."""
    problem = json_problem(value, max_depth=MAX_DEPTH)
    if problem is not None:
        raise ApplicationError(f"{where} {problem[1]}.", code=problem[0], status=400)


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object; every way it can be wrong is a 400 or 413 ApplicationError."""
    limit = input_max_bytes()
    # data and params may each be up to the limit; anything far beyond both is refused unread.
    body_limit = body_max_bytes()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > body_limit:
        raise ApplicationError(
            f"The request body is {length} bytes; data and params may be at most {limit} bytes each "
            "(use dataRef/paramsRef with a data pool for larger input).",
            code="input:too-large",
            status=413,
        )
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not length:
        # Django reads a body without Content-Length as empty; a server that ends the input stream
        # itself (granian, gunicorn: wsgi.input_terminated) lets us read it directly, capped.
        if not request.META.get("wsgi.input_terminated"):
            raise ApplicationError(
                "Send the request body with a Content-Length header.", code="input:length-required", status=411
            )
        raw = request.META["wsgi.input"].read(body_limit + 1)
    else:
        # Never more than one byte past the limit, whatever Content-Length claimed.
        raw = request.read(body_limit + 1)
    if len(raw) > body_limit:
        raise ApplicationError(
            f"The request body is larger than {body_limit} bytes; data and params may be at most {limit} bytes "
            "each (use dataRef/paramsRef with a data pool for larger input).",
            code="input:too-large",
            status=413,
        )
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApplicationError("The request body is not UTF-8 text.", code="input:malformed-json") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApplicationError(
            f"The request body is nested deeper than {MAX_DEPTH} levels.", code="input:too-deep"
        ) from None
    except ValueError as exc:
        raise ApplicationError(f"The request body is not valid JSON: {exc}", code="input:malformed-json") from None
    if not isinstance(document, dict):
        raise ApplicationError(
            'The request body must be a JSON object: {"data": {...}, "params": {...}}.', code="input:not-an-object"
        )
    return document


def _encoded_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def execution_input(document: dict[str, Any]) -> dict[str, Any]:
    """``data``/``dataRef`` and ``params``/``paramsRef`` of a POST body, checked."""
    limit = input_max_bytes()
    result: dict[str, Any] = {}
    for name, ref_name in (("data", "dataRef"), ("params", "paramsRef")):
        value = document.get(name)
        ref = document.get(ref_name)
        if value is not None and ref is not None:
            raise ApplicationError(f'Send either "{name}" or "{ref_name}", not both.', code="input:both-value-and-ref")
        if value is not None:
            if not isinstance(value, dict):
                raise ApplicationError(f'"{name}" must be a JSON object.', code="input:not-an-object")
            check_document(value, f'"{name}"')
            size = _encoded_size(value)
            if size > limit:
                raise ApplicationError(
                    f'"{name}" is {size} bytes; at most {limit} bytes can be passed by value '
                    f'(use "{ref_name}" with a data pool for larger input).',
                    code="input:too-large",
                    status=413,
                )
        if ref is not None:
            if not isinstance(ref, dict) or any(not isinstance(ref.get(key), str) for key in REF_KEYS):
                raise ApplicationError(
                    f'"{ref_name}" must be an object with the string ids {", ".join(REF_KEYS)}.',
                    code="datapool:bad-reference",
                )
            check_document(ref, f'"{ref_name}"')
        result[name] = value
        result[f"{name}_ref"] = ref
    return result
