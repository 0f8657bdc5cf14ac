"""One error type for business rules, translated for both the API and the HTML views."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A user-facing failure with a stable code, e.g. ``upload:zip-slip``."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: int = 400,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.extra = extra or {}
        # HTTP headers the answer carries on every road (e.g. Retry-After with a 429).
        self.headers = headers or {}

    @classmethod
    def from_service_api(cls, exc: Any) -> ApplicationError:
        """The service API contract's ``ServiceAPIError`` as ours: same code, message, status, extra."""
        return cls(exc.detail, code=exc.code, status=exc.status, extra=exc.extra or None)


def full_clean(obj: Any, *, exclude: list[str] | None = None) -> None:
    """``obj.full_clean()`` with Django's ValidationError turned into one readable ApplicationError."""
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            text = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        else:
            text = " ".join(exc.messages)
        raise ApplicationError(text, code="invalid") from exc


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every API error as JSON ``{"code", "detail"}``; never a stack trace."""
    # Imported here: rest_framework.views imports the authentication classes, which import us.
    from rest_framework.views import exception_handler

    if isinstance(exc, ApplicationError):
        return Response(
            {"code": exc.code, "detail": exc.message, **exc.extra}, status=exc.status, headers=exc.headers or None
        )
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            {"code": "server-error", "detail": "The server failed to handle this request."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": _flatten(exc.detail), "errors": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "code": codes if isinstance(codes, str) else "error",
            "detail": _flatten(exc.detail),
        }
    return response
