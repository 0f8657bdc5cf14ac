"""Checks of what a client sends: the request body of ``POST /`` and the inputs in it.

Every function raises :class:`~planqk_service_api.errors.ServiceAPIError` (or returns a problem)
with the contract's code and HTTP status; reading the bytes off the connection is the server's
part (Content-Length, chunked bodies), everything after that is here.

Hostile input is expected: JSON that is not an object, NaN and Infinity, numbers that overflow to
infinity (``1e999``), nesting deep enough to exhaust the parser's recursion, NUL characters and
unpaired surrogates (which PostgreSQL's jsonb refuses), a byte order mark, bytes that are not
UTF-8, bodies larger than any input may be. Duplicate keys are taken as JSON parsers usually
take them: the last one wins.
"""

from __future__ import annotations

import json
import math
from typing import Any

from . import codes
from .errors import ServiceAPIError

#: ``data`` and ``params`` passed by value are at most this many bytes each (1 MB), by default.
DEFAULT_INPUT_MAX_BYTES = 1024 * 1024
#: A request body carries ``data`` and ``params`` of at most the input limit each, plus this.
BODY_OVERHEAD_BYTES = 64 * 1024
#: How deep a JSON document may be nested (objects and arrays).
MAX_DEPTH = 100
#: The ids of a data pool reference (``dataRef`` / ``paramsRef``).
REF_KEYS = ("dataPoolId", "dataSourceDescriptorId", "fileId")
#: The inputs of an execution: (by value, by reference).
INPUT_NAMES = (("data", "dataRef"), ("params", "paramsRef"))


def body_max_bytes(input_max_bytes: int = DEFAULT_INPUT_MAX_BYTES) -> int:
    """The largest request body worth reading: two inputs of ``input_max_bytes`` and the JSON around them."""
    return 2 * input_max_bytes + BODY_OVERHEAD_BYTES


def check_body_size(size: int, *, input_max_bytes: int = DEFAULT_INPUT_MAX_BYTES, exact: bool = True) -> None:
    """413 ``input:too-large`` when a body of ``size`` bytes is larger than :func:`body_max_bytes`.

    ``exact``: ``size`` is the body's length (its Content-Length); otherwise only that more than
    the limit arrived (the body was read up to one byte past it).
    """
    limit = body_max_bytes(input_max_bytes)
    if size <= limit:
        return
    what = f"is {size} bytes" if exact else f"is larger than {limit} bytes"
    raise ServiceAPIError(
        codes.INPUT_TOO_LARGE,
        f"The request body {what}; data and params may be at most {input_max_bytes} bytes each "
        "(use dataRef/paramsRef with a data pool for larger input).",
        413,
    )


def json_problem(value: Any, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """Why a JSON value cannot be stored, as ``(code, reason)``, or None; never recurses.

    Too deep (``input:too-deep``); text PostgreSQL's jsonb refuses, a NUL character or an
    unpaired surrogate (``input:invalid-characters``); a number JSON cannot write, infinity or NaN
    (``input:not-json``: ``1e999`` parses to infinity). The reason completes a sentence that
    starts with the value's name.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return codes.INPUT_TOO_DEEP, f"is nested more than {max_depth} levels deep"
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return codes.INPUT_INVALID_CHARACTERS, "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return codes.INPUT_INVALID_CHARACTERS, "contains an unpaired surrogate (\\ud800-\\udfff)"
        elif isinstance(item, float) and not math.isfinite(item):
            return codes.INPUT_NOT_JSON, "contains a number out of JSON's range (infinity or NaN)"
    return None


def check_document(value: Any, where: str, *, max_depth: int = MAX_DEPTH) -> None:
    """:func:`json_problem` as a 400 whose detail starts with ``where`` (e.g. ``'"data"'``)."""
    problem = json_problem(value, max_depth=max_depth)
    if problem is not None:
        raise ServiceAPIError(problem[0], f"{where} {problem[1]}.", 400)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(raw: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A request body as a JSON object; an empty body is ``{}``.

    400 ``input:malformed-json`` (not UTF-8, not JSON, NaN or Infinity, a byte order mark),
    ``input:too-deep`` (nested beyond the parser's recursion) or ``input:not-an-object``. The
    size is the server's to check first (:func:`check_body_size`).
    """
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceAPIError(codes.INPUT_MALFORMED_JSON, "The request body is not UTF-8 text.") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ServiceAPIError(
            codes.INPUT_TOO_DEEP, f"The request body is nested deeper than {max_depth} levels."
        ) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers beyond Python's digit limit
        raise ServiceAPIError(codes.INPUT_MALFORMED_JSON, f"The request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ServiceAPIError(
            codes.INPUT_NOT_AN_OBJECT, 'The request body must be a JSON object: {"data": {...}, "params": {...}}.'
        )
    return document


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (how its size is measured against the limit)."""
    return len(json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8"))


def _check_ref(ref: Any, ref_name: str, *, max_depth: int) -> None:
    if not isinstance(ref, dict) or any(not isinstance(ref.get(key), str) for key in REF_KEYS):
        raise ServiceAPIError(
            codes.DATAPOOL_BAD_REFERENCE,
            f'"{ref_name}" must be an object with the string ids {", ".join(REF_KEYS)}.',
        )
    check_document(ref, f'"{ref_name}"', max_depth=max_depth)


def execution_input(
    document: dict[str, Any], *, max_bytes: int = DEFAULT_INPUT_MAX_BYTES, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """``data``/``dataRef`` and ``params``/``paramsRef`` of a POST body, checked.

    Returns ``{"data", "params", "data_ref", "params_ref"}`` (None for what was not given; a JSON
    ``null`` is not given). Each input is either a value or a reference (400
    ``input:both-value-and-ref``); a value is a JSON object (400 ``input:not-an-object``) that
    :func:`json_problem` accepts and of at most ``max_bytes`` (413 ``input:too-large``); a
    reference has the three string ids (400 ``datapool:bad-reference``). Whether the referenced
    file exists and may be read is the server's to check.
    """
    result: dict[str, Any] = {}
    for name, ref_name in INPUT_NAMES:
        value = document.get(name)
        ref = document.get(ref_name)
        if value is not None and ref is not None:
            raise ServiceAPIError(codes.INPUT_BOTH_VALUE_AND_REF, f'Send either "{name}" or "{ref_name}", not both.')
        if value is not None:
            if not isinstance(value, dict):
                raise ServiceAPIError(codes.INPUT_NOT_AN_OBJECT, f'"{name}" must be a JSON object.')
            check_document(value, f'"{name}"', max_depth=max_depth)
            size = encoded_size(value)
            if size > max_bytes:
                raise ServiceAPIError(
                    codes.INPUT_TOO_LARGE,
                    f'"{name}" is {size} bytes; at most {max_bytes} bytes can be passed by value '
                    f'(use "{ref_name}" with a data pool for larger input).',
                    413,
                )
        if ref is not None:
            _check_ref(ref, ref_name, max_depth=max_depth)
        result[name] = value
        result[f"{name}_ref"] = ref
    return result
