"""Template helpers for services: Markdown and build status icons."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from services.rendering import render_markdown

register = template.Library()

_ICONS = {
    "PENDING": ("⏳", "waiting to build"),
    "BUILDING": ("⚙", "building"),
    "READY": ("✔", "ready"),
    "FAILED": ("✖", "build failed"),
    "CANCELLED": ("⊘", "build cancelled"),
}


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Render a provider's Markdown safely."""
    return render_markdown(text)


@register.inclusion_tag("services/includes/status_icon.html")
def build_status_icon(status: str | None) -> dict[str, str]:
    """An icon and a label for a build status (or for no version at all)."""
    icon, label = _ICONS.get(status or "", ("·", "no version"))
    return {"status": status or "NONE", "icon": icon, "label": label}
