"""The REST API's OpenAPI schema tells every answer an operation can give, errors included.

Every error of the API is ``{"code", "detail"}`` (``planqk_portal.errors.api_exception_handler``),
with more keys for some codes: ``errors`` for a 400 ``invalid`` (the fields' messages) and a 422
``input:invalid`` (``[{"path", "message"}]``), ``add_card_url`` for a 402. :class:`AutoSchema`
adds the answers every operation of a kind gives, unless the view documents them itself:

- 401 (no or an invalid token) and 403 (a token without the ``api`` scope; an object the caller
  may see but not change) everywhere;
- 404 for an operation with path parameters (a missing object and another user's one alike),
  a paginated list (a page past the last) and a write (an object named by id in the body);
- 409 for a write (the object's state does not allow it, a name already taken);
- 400 for an operation that takes a body or query parameters (invalid input), and 415 for one
  that takes a body (a content type it does not read).

Views add the rest with :func:`errors` (``responses={201: X, **errors(402, 409)}``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

DESCRIPTIONS = {
    400: "Invalid input (`invalid` with the fields' messages in `errors`, or a more precise code)",
    401: "No, a malformed, an expired or a revoked personal access token",
    402: "Payment required (`payments:card-required`, `payments:invoice-unpaid`, `payments:budget-exceeded`; "
    "with `add_card_url`)",
    403: "Not allowed: a token without the `api` scope, or an object you can see but may not change",
    404: "No such object (another user's object gets the same answer)",
    409: "The object's state does not allow it",
    413: "Too large",
    415: "A content type this operation does not read",
    422: "Input that does not match the service's `data`/`params` schemas (`input:invalid`, every problem in `errors`)",
    429: "A rate or concurrency limit (with `Retry-After`)",
    503: "A backend this operation needs is unavailable",
}


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a stable code and a message; some codes add keys (``errors``, ``add_card_url``)."""

    code = serializers.CharField(help_text="A stable identifier, e.g. `job:not-found`.")
    detail = serializers.CharField(help_text="A message for people.")
    errors = serializers.JSONField(
        required=False,
        help_text='400 `invalid`: the messages by field; 422 `input:invalid`: `[{"path", "message"}]`.',
    )


def error(status: int, description: str = "") -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description or DESCRIPTIONS.get(status, "Error"))


def errors(*statuses: int, **described: str) -> dict[int, OpenApiResponse]:
    """``errors(404, 409)`` for ``responses={...}``; a description per status as ``errors(_409="...")``."""
    result = {status: error(status) for status in statuses}
    for key, description in described.items():
        result[int(key.lstrip("_"))] = error(int(key.lstrip("_")), description)
    return result


class AutoSchema(BaseAutoSchema):
    """drf-spectacular's, plus the error answers every operation of its kind gives (module doc).

    A request serializer with a ``schema_constraints`` dict (``anyOf``/``allOf``/``not`` over its
    fields: what is required together, what excludes what) gets them in its request component.
    """

    def map_parsers(self) -> list[str]:
        """Views with the default parsers are documented with JSON bodies only (the CLI's and
        clients' encoding): the form encodings they also read carry no types to check."""
        from rest_framework.settings import api_settings

        media_types = super().map_parsers()
        if list(self.view.parser_classes) == list(api_settings.DEFAULT_PARSER_CLASSES) and (
            "application/json" in media_types
        ):
            return ["application/json"]
        return media_types

    def _map_serializer(self, serializer: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        constraints = getattr(serializer, "schema_constraints", None)
        if constraints and direction == "request":
            schema.update(constraints)
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        statuses = [401, 403]
        takes_body = "requestBody" in operation
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        # A page past the last one is 404 too; a write may name an object by id in its body.
        if "{" in self.path or self._get_paginator() is not None or writes:
            statuses.append(404)
        if writes:
            statuses.append(409)
        if takes_body and getattr(self.get_request_serializer(), "schema_constraints", None):
            # Its constraints require fields, so an empty body is refused (400).
            operation["requestBody"]["required"] = True
        if takes_body or any(p.get("in") == "query" for p in operation.get("parameters", [])):
            statuses.append(400)
        if takes_body:
            statuses.append(415)
        responses = operation["responses"]
        for status in statuses:
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(error(status), str(status))
        operation["responses"] = dict(sorted(responses.items()))
        return operation
