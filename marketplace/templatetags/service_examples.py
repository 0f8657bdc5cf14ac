"""The example request body of a service's spec, for the curl examples on pages that list services."""

from __future__ import annotations

import json
import re
from typing import Any

from django import template

register = template.Library()


@register.filter
def example_body(service: Any) -> str:
    """``{"data": ..., "params": ...}`` from the ``POST /`` example of the service's callable version
    (empty input when it has none), quoted for a shell's single quotes: pasted, it runs."""
    from marketplace.rendering import _example_input as example_input
    from services.selectors import service_version_latest_callable

    version = service_version_latest_callable(service=service) if service is not None else None
    data, params = example_input(version.api_spec if version is not None else "")
    return json.dumps({"data": data, "params": params}, ensure_ascii=False).replace("'", "'\\''")


#: The user code template's placeholder text (older templates, and PlanQK's own): it describes
#: nothing, so a spec that still has it gets a warning for its provider.
PLACEHOLDERS = (
    re.compile(r"Adapt the\s+`?InputData`?", re.IGNORECASE),
    re.compile(r"Describe your service'?s input here", re.IGNORECASE),
    re.compile(r"Describe your service'?s output here", re.IGNORECASE),
)


def spec_placeholder_text(api_spec: str) -> list[str]:
    """The template placeholder phrases left in a spec's text (YAML comments do not count: they
    never reach a page)."""
    import yaml

    if not api_spec or not api_spec.strip():
        return []
    try:
        text = json.dumps(yaml.safe_load(api_spec), ensure_ascii=False)
    except (yaml.YAMLError, TypeError, ValueError):
        return []
    found = []
    for pattern in PLACEHOLDERS:
        match = pattern.search(text)
        if match:
            found.append(match.group(0))
    return found


@register.filter
def spec_placeholders(target: Any) -> list[str]:
    """:func:`spec_placeholder_text` of a ServiceVersion, or of a Service's callable version."""
    from services.selectors import service_version_latest_callable

    if target is None:
        return []
    version = target if hasattr(target, "api_spec") else service_version_latest_callable(service=target)
    return spec_placeholder_text(version.api_spec) if version is not None else []
