"""Requests refused before any view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from planqk_service_api import codes


def content_length_is_valid(value: str | None) -> bool:
    """RFC 9110 section 8.6: ``1*DIGIT``. Django reads anything else (``-5``, ``abc``) as an empty
    body, which would let a request with a body the client did not mean to send go through."""
    return value is None or value == "" or value.isdigit()


class InvalidContentLengthMiddleware:
    """400 for a request whose Content-Length is not a number: JSON ``input:bad-content-length``
    on the API and the gateway, the styled 400 page elsewhere. Production servers (granian)
    mostly refuse these themselves; this holds for every server."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not content_length_is_valid(request.META.get("CONTENT_LENGTH")):
            detail = "Content-Length is not a number."
            if request.path.startswith(("/api/", "/gateway/")):
                response: HttpResponse = JsonResponse(
                    {"code": codes.INPUT_BAD_CONTENT_LENGTH, "detail": detail}, status=400
                )
            else:
                response = HttpResponse(render_to_string("400.html"), status=400)
            return response
        return self.get_response(request)
