"""Serializer fields that take what the REST API's schema says, and nothing they would coerce.

DRF's ``CharField`` turns a JSON number into a string (``{"description": 5}`` is stored as
``"5"``) and its ``UUIDField`` reads any form ``uuid.UUID`` does (32 hex digits, braces, a
``urn:uuid:`` prefix, even an integer), while the schema promises a string and the uuid format.
Every request serializer of the API uses these instead, so a value the schema calls invalid is
a 400 ``invalid`` naming the field, as the schema's clients (and Schemathesis) expect. Form and
multipart bodies carry strings only, so they pass unchanged.

Query parameters are read with :class:`QuerySerializer`: DRF reads a form-like ``QueryDict`` so
that ``?filter=`` means "not given", while the schema (an enum, a uuid, a minimum length) calls
an empty value invalid.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.core.validators import RegexValidator
from django.http import QueryDict
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers
from rest_framework.fields import empty

# RFC 4122's textual form, as JSON Schema's "uuid" format checks it: 8-4-4-4-12 hex digits.
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class SchemaMixin:
    """``schema=``: JSON Schema keywords the field's schema gets besides its own (a dict, or a
    callable returning one when the schema is made, for bounds from settings).

    For rules a service function checks with its own error code (a service name's grammar, the
    resource bounds): the schema says them, the check stays in one place.
    """

    def __init__(self, *args: Any, schema: dict[str, Any] | Callable[[], dict[str, Any]] | None = None, **kwargs: Any):
        self.schema_extra = schema
        super().__init__(*args, **kwargs)


class StrictCharField(SchemaMixin, serializers.CharField):
    """A string field that refuses numbers, booleans and everything else that is not a string.

    ``max_length`` counts the string as sent (DRF counts it after trimming whitespace, which
    would accept a longer string than the schema's ``maxLength``); a field that may not be blank
    also refuses whitespace only, which its schema says with a pattern (:class:`_StrictCharSchema`).
    """

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


def _from_form(field: serializers.Field) -> bool:
    """Whether the field's body is a form or multipart body (text only), not JSON."""
    return isinstance(getattr(field.root, "initial_data", None), QueryDict)


class _StrictNumberMixin:
    """A number that is one in a JSON body: DRF reads ``"12"`` and ``true`` as 12 and 1, while
    the schema says integer/number; a form body, which has only text, keeps DRF's reading."""

    #: The JSON types the schema's type allows (bool is an int in Python, so it is named apart).
    json_types: tuple[type, ...] = (int,)

    def to_internal_value(self, data: Any) -> Any:
        text_ok = _from_form(self) and isinstance(data, str)  # type: ignore[arg-type]
        if not text_ok and (isinstance(data, bool) or not isinstance(data, self.json_types)):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictIntegerField(_StrictNumberMixin, serializers.IntegerField):
    """An integer: in JSON a number without a fraction, never a string or a boolean."""


class DocumentedIntegerField(SchemaMixin, StrictIntegerField):
    """A strict integer field with ``schema=`` keywords (:class:`SchemaMixin`)."""


class DocumentedFloatField(SchemaMixin, _StrictNumberMixin, serializers.FloatField):
    """A strict number field with ``schema=`` keywords (:class:`SchemaMixin`)."""

    json_types = (int, float)


class StrictBooleanField(serializers.BooleanField):
    """A boolean that is one in a JSON body (``0``, ``"true"`` and ``null`` are refused there);
    a form or multipart body, which has only text, keeps DRF's spellings (``true``, ``on``, ``1``...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool) and not (_from_form(self) and isinstance(data, str)):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID in its hyphenated text form only (``8-4-4-4-12`` hex digits)."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if isinstance(data, uuid.UUID):
            return data
        if not isinstance(data, str) or not _UUID_TEXT.fullmatch(data):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class QuerySerializer(serializers.Serializer):
    """Reads query parameters as values: ``?status=`` is an empty status (refused where the field
    does not allow blank), not a missing one. A repeated parameter counts with its last value."""

    def __init__(self, instance: Any = None, data: Any = empty, **kwargs: Any) -> None:
        if isinstance(data, QueryDict):
            data = data.dict()
        super().__init__(instance, data=data, **kwargs)


class _DocumentedSchema(OpenApiSerializerFieldExtension):
    """The schema of a :class:`SchemaMixin` field: its ``schema=`` keywords; a non-blank
    :class:`StrictCharField` also needs a character that is not whitespace."""

    target_class = SchemaMixin
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        field = self.target
        extra = field.schema_extra() if callable(field.schema_extra) else dict(field.schema_extra or {})
        schema.update(extra)
        # A field's own pattern (a RegexValidator, added to the schema later) says more.
        own_pattern = any(isinstance(v, RegexValidator) for v in field.validators)
        if (
            isinstance(field, serializers.CharField)
            and not field.allow_blank
            and field.trim_whitespace
            and not own_pattern
            and "pattern" not in schema
        ):
            schema["pattern"] = r"\S"
        return schema
