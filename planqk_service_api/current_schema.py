"""The current generation's input schema: a spec's whole ``POST /`` request body schema.

A current-generation request is the program's input itself (its top-level keys are ``run()``'s
parameters), so the schema every road checks it against is the request body's, without the
platform's own ``$secrets`` / ``$tags`` properties (they never reach the program). It is read
by the contract's own reader (:func:`planqk_service_api.schema.input_schemas`), handed a spec
whose ``data`` property is that body, so ``$ref``s, the OpenAPI dialects and the compiled
validators follow the one rule of the documented generation; errors are named from the
request's top level (``data.values[2]`` is the key ``data``, not the 2022 ``data`` input).

Used by admission (``jobs.admission.body_schema_check``) and ``planqk serve``.
"""

from __future__ import annotations

from typing import Any

from .errors import ServiceAPIError
from .schema import InputSchemas, check_input, input_schemas, mismatch, request_body_schema, schemas_of_text

#: The keys of a current-generation request body that are the platform's, not the program's.
PLATFORM_KEYS = ("$secrets", "$tags")
_WHOLE_BODY = "(the request body)"


def body_schemas(spec: Any) -> InputSchemas:
    """The body schema of a parsed spec as the ``data`` schema of an :class:`InputSchemas`
    (None: any object); raises :class:`SchemaError` when it cannot be used."""
    if not isinstance(spec, dict):
        return InputSchemas(None, None)
    schema = request_body_schema(spec)
    if not isinstance(schema, dict):
        return InputSchemas(None, None, str(spec.get("openapi") or "3.0.3"))
    schema = dict(schema)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in PLATFORM_KEYS}
    if isinstance(schema.get("required"), list):
        schema["required"] = [k for k in schema["required"] if k not in PLATFORM_KEYS]
    media = {"application/json": {"schema": {"properties": {"data": schema}}}}
    wrapped = {
        "openapi": spec.get("openapi") or "3.0.3",
        "components": spec.get("components") or {},
        "paths": {"/": {"post": {"requestBody": {"content": media}}}},
    }
    return input_schemas(wrapped)


def body_schemas_of(text: str) -> InputSchemas:
    """:func:`body_schemas` of a spec's YAML/JSON text, parsed and compiled once per text."""
    return schemas_of_text(text, body_schemas)


def check_body(schemas: InputSchemas, value: Any) -> None:
    """The 422 ``input:invalid`` of :func:`planqk_service_api.schema.check_input`, for a whole
    current-generation request object, each error's path named from the top level."""
    try:
        check_input(schemas, data=value)
    except ServiceAPIError as exc:
        errors = []
        for error in exc.extra.get("errors") or []:
            path = str(error.get("path", ""))
            path = path[len("data") :].lstrip(".") if path.startswith("data") else path
            errors.append({**error, "path": path or _WHOLE_BODY})
        if not errors:
            errors = [{"path": _WHOLE_BODY, "message": exc.detail}]
        raise mismatch(errors, exc.status, exc.extra) from None
