"""A form field with its label, help and errors tied to it (aria-describedby, aria-invalid)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag
def field_widget(field: Any, **attrs: Any) -> str:
    """The field's widget, described by its help text and errors, invalid when it has errors."""
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}-help")
    if field.errors:
        described.append(f"{field.auto_id}-errors")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    return field.as_widget(attrs={key.replace("_", "-"): value for key, value in attrs.items()})
