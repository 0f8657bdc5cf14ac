"""A JSON parser for job input that answers bad bodies with clear errors instead of a 500."""

from __future__ import annotations

import codecs
import json
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from jobs.services import body_max_bytes, input_max_bytes
from planqk_portal.errors import ApplicationError


class JobInputJSONParser(JSONParser):
    """DRF's JSON parser, plus: 413 ``input:too-large`` for an oversized body (read no further)
    and 400 ``input:too-deep`` for nesting that would exhaust the parser's recursion."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = body_max_bytes()
        request = (parser_context or {}).get("request")
        raw_length = (request.META.get("CONTENT_LENGTH") or "0").strip() if request is not None else "0"
        if not raw_length.isdigit():  # "-5", "abc": not a length (also refused by the middleware)
            raise ApplicationError("Content-Length is not a number.", code="input:bad-content-length", status=400)
        declared = int(raw_length)
        if declared > limit:
            raise _too_large(limit)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise _too_large(limit)
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            text = codecs.decode(raw, encoding)
            return json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise ApplicationError("The JSON body is nested too deeply.", code="input:too-deep", status=400) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _too_large(limit: int) -> ApplicationError:
    return ApplicationError(
        f"The request body is larger than {limit} bytes; data and params may each be at most "
        f"{input_max_bytes()} bytes. Use data pool references for larger input.",
        code="input:too-large",
        status=413,
    )
