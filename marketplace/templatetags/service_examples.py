"""The example request body of a service's spec, for the curl examples on pages that list services."""

from __future__ import annotations

import json
from typing import Any

from django import template

# The placeholder rule lives beside the Swagger rendering that strips the same phrases.
from marketplace.rendering import PLACEHOLDERS, spec_placeholder_text

__all__ = ["PLACEHOLDERS", "example_body", "spec_placeholder_text", "spec_placeholders"]

register = template.Library()


@register.filter
def example_body(service: Any) -> str:
    """``{"data": ..., "params": ...}`` from the ``POST /`` example of the service's callable version
    (empty input when it has none), quoted for a shell's single quotes: pasted, it runs."""
    from marketplace.rendering import call_example
    from services.selectors import service_version_latest_callable

    version = service_version_latest_callable(service=service) if service is not None else None
    body = call_example(version) if version is not None else {"data": {}, "params": {}}
    return json.dumps(body, ensure_ascii=False).replace("'", "'\\''")


@register.filter
def spec_placeholders(target: Any) -> list[str]:
    """:func:`spec_placeholder_text` of a ServiceVersion, or of a Service's callable version."""
    from services.selectors import service_version_latest_callable

    if target is None:
        return []
    version = target if hasattr(target, "api_spec") else service_version_latest_callable(service=target)
    return spec_placeholder_text(version.api_spec) if version is not None else []
