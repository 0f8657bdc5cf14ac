"""Safe HTML for what providers write: Markdown descriptions and API specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import markdown as md
import nh3
import yaml
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "td": {"align"}, "th": {"align"}}


def _own_images_only(element: str, attribute: str, value: str) -> str | None:
    """An image from another site would tell it who reads the page: only the portal's own load."""
    if element == "img" and attribute == "src":
        parts = urlsplit(value.strip())
        if parts.scheme or parts.netloc or not parts.path.startswith("/") or value.strip().startswith("//"):
            return None
    return value


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML with everything active removed (scripts, event handlers, javascript: links).

    Images load only from the portal itself: a remote ``src`` is dropped (the alt text stays).
    """
    html = md.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_own_images_only,
    )
    return mark_safe(clean)  # noqa: S308 - nh3 has just removed everything unsafe


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: SafeString


@dataclass
class SpecSummary:
    """What a reader wants from an API spec at a glance."""

    title: str = ""
    version: str = ""
    description: SafeString = field(default_factory=lambda: mark_safe(""))
    operations: list[Operation] = field(default_factory=list)
    schemas: list[str] = field(default_factory=list)
    error: str = ""


_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def summarize_api_spec(text: str) -> SpecSummary:
    """Title, operations and schema names of a (validated) OpenAPI document; never raises."""
    try:
        spec = yaml.safe_load(text or "")
    except yaml.YAMLError as exc:
        return SpecSummary(error=f"The spec cannot be read: {exc}")
    if not isinstance(spec, dict):
        return SpecSummary(error="No API spec.")
    info = spec.get("info") if isinstance(spec.get("info"), dict) else {}
    summary = SpecSummary(
        title=_text(info.get("title")),
        version=str(info.get("version") or ""),
        description=render_markdown(_text(info.get("description"))),
    )
    paths = spec.get("paths") if isinstance(spec.get("paths"), dict) else {}
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        for method in _METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                summary.operations.append(
                    Operation(
                        method=method.upper(),
                        path=str(path),
                        summary=_text(operation.get("summary")),
                        description=render_markdown(_text(operation.get("description"))),
                    )
                )
    components = spec.get("components") if isinstance(spec.get("components"), dict) else {}
    schemas = components.get("schemas") if isinstance(components.get("schemas"), dict) else {}
    summary.schemas = [str(name) for name in schemas]
    return summary
