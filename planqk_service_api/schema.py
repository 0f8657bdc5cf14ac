"""The input schemas of a service's API spec, and the one check of input against them.

A service's ``openapi-spec.yml`` describes ``POST /``: its request body's ``data`` and
``params`` properties are the schemas every road checks input against before an execution
exists (the gateway, the REST API, the Jobs page through admission; ``planqk serve`` itself).
A spec that declares no schema for one accepts any JSON object. Only internal ``$ref``s
(``#/...``) are followed; anything else makes the spec unusable (:class:`SchemaError`).

The validator is a well-kept one, ``openapi-schema-validator`` (on ``jsonschema``), so OpenAPI
3.0's dialect (``nullable``, ``example``...) means what OpenAPI says. It is imported lazily: the
rest of this package stays standard-library only.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import codes
from .errors import ServiceAPIError

#: How many errors one answer lists at most (a huge bad input must not make a huge answer).
MAX_ERRORS = 50
_MAX_REF_DEPTH = 50


class SchemaError(ValueError):
    """The spec's input schemas cannot be used (a broken schema, an external or looping ``$ref``)."""


#: Keywords that may stand beside a lone ``allOf`` member without changing what it means.
_ANNOTATIONS = frozenset({"nullable", "description", "title", "example", "default"})


def _follow(spec: dict[str, Any], node: Any) -> Any:
    """``node``, or what its internal ``$ref`` points at (a chain of them, followed).

    OpenAPI 3.0's idiom for a nullable reference, ``{"allOf": [{"$ref": ...}], "nullable": true}``,
    is unwrapped to the referenced schema with those annotations, so forms see its properties.
    """
    for _ in range(_MAX_REF_DEPTH):
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if ref is not None:
            node = _pointer(spec, ref)
            continue
        members = node.get("allOf")
        if isinstance(members, list) and len(members) == 1 and set(node) - {"allOf"} <= _ANNOTATIONS:
            inner = _follow(spec, members[0])
            if isinstance(inner, dict):
                node = {**inner, **{key: value for key, value in node.items() if key != "allOf"}}
                continue
        return node
    raise SchemaError("the schema's $refs loop")


def _pointer(spec: dict[str, Any], ref: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise SchemaError(f"only internal $refs (#/...) are allowed, not {ref!r}")
    target: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            raise SchemaError(f"the $ref {ref!r} points at nothing")
        target = target[part]
    return target


def _check_refs(spec: dict[str, Any], node: Any) -> None:
    """Every ``$ref`` below ``node`` is internal and points at something (never recurses)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "$ref" in item:
                _pointer(spec, item["$ref"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True)
class InputSchemas:
    """The ``data`` and ``params`` schemas of one spec (None: any JSON object), ready to check."""

    data: dict[str, Any] | None
    params: dict[str, Any] | None
    openapi: str = "3.0.3"

    def validator(self, name: str) -> Any:
        schema = self.data if name == "data" else self.params
        return None if schema is None else _validator(self.openapi, json.dumps(schema, sort_keys=True))

    def errors(self, name: str, value: Any) -> list[dict[str, str]]:
        """``[{"path": "data.values[2]", "message": ...}]`` for ``value`` as the input ``name``."""
        validator = self.validator(name)
        if validator is None:
            return []
        found = []
        for error in sorted(validator.iter_errors({} if value is None else value), key=_error_key):
            found.append({"path": _path(name, error.absolute_path), "message": _message(error)})
            if len(found) >= MAX_ERRORS:
                break
        return found


def _error_key(error: Any) -> tuple[str, str]:
    return (".".join(str(part) for part in error.absolute_path), error.message)


def _path(name: str, parts: Any) -> str:
    path = name
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(error: Any) -> str:
    # jsonschema quotes the whole offending value; a long one is cut so answers stay small.
    message = str(error.message)
    return message if len(message) <= 300 else message[:297] + "..."


@functools.lru_cache(maxsize=256)
def _validator(openapi: str, schema_json: str) -> Any:
    """A compiled validator per distinct schema (compiling costs far more than checking)."""
    import openapi_schema_validator as oas
    from jsonschema import FormatChecker
    from jsonschema.exceptions import SchemaError as JsonSchemaError

    cls = oas.OAS31Validator if openapi.startswith("3.1") else oas.OAS30Validator
    schema = json.loads(schema_json)
    try:
        cls.check_schema(schema)
    except JsonSchemaError as exc:
        raise SchemaError(f"the schema is not valid: {exc.message}") from None
    return cls(schema, format_checker=FormatChecker())


def request_body_schema(spec: Any) -> Any:
    """The ``POST /`` JSON request body schema of a parsed spec, its ``$ref`` followed (None: none)."""
    media = _dig(spec, "paths", "/", "post", "requestBody", "content", "application/json", "schema")
    return None if media is None else _follow(spec, media)


def input_schemas(spec: dict[str, Any] | None) -> InputSchemas:
    """The input schemas of a parsed spec; raises :class:`SchemaError` when they cannot be used."""
    if not isinstance(spec, dict):
        return InputSchemas(None, None)
    openapi = str(spec.get("openapi") or "3.0.3")
    body = request_body_schema(spec)
    properties = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict):
        return InputSchemas(None, None, openapi)
    components = spec.get("components")
    if isinstance(components, dict):
        _check_refs(spec, components)
    schemas: dict[str, dict[str, Any] | None] = {}
    for name in ("data", "params"):
        schema = _follow(spec, properties.get(name))
        if not isinstance(schema, dict):
            schemas[name] = None
            continue
        _check_refs(spec, schema)
        # The spec's components go along, so $refs inside (recursive ones too) resolve as written.
        schemas[name] = {**schema, "components": components} if isinstance(components, dict) else schema
    found = InputSchemas(data=schemas["data"], params=schemas["params"], openapi=openapi)
    for name in ("data", "params"):
        found.validator(name)  # compile now: an unusable schema is the provider's error, at upload
    return found


@functools.lru_cache(maxsize=256)
def _schemas_of_text(digest: str, text: str, reader: Callable[[Any], InputSchemas]) -> InputSchemas:
    import yaml

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"the spec is not YAML: {exc}") from None
    return reader(spec)


def schemas_of_text(text: str, reader: Callable[[Any], InputSchemas]) -> InputSchemas:
    """``reader`` (:func:`input_schemas` or the current generation's ``body_schemas``) of a spec's
    YAML/JSON text, parsed and compiled once per text and reader."""
    if not text or not text.strip():
        return InputSchemas(None, None)
    return _schemas_of_text(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), text, reader)


def input_schemas_of(text: str) -> InputSchemas:
    """:func:`input_schemas` of a spec's YAML/JSON text, parsed and compiled once per text."""
    return schemas_of_text(text, input_schemas)


def mismatch(errors: list[dict[str, str]], status: int = 422, extra: dict[str, Any] | None = None) -> ServiceAPIError:
    """The ``input:invalid`` error naming the first of ``errors`` (``{"path", "message"}``)."""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ServiceAPIError(
        codes.INPUT_INVALID,
        f"The input does not match the service's API spec: {first['path']}: {first['message']}{more}.",
        status,
        {**(extra or {}), "errors": errors[:MAX_ERRORS]},
    )


def check_input(schemas: InputSchemas, **inputs: Any) -> None:
    """Raise the 422 ``input:invalid`` listing every error of the given inputs (``data=``, ``params=``)."""
    errors: list[dict[str, str]] = []
    for name, value in inputs.items():
        errors += schemas.errors(name, value)
    if errors:
        raise mismatch(errors)
