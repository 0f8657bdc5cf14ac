"""What the service page derives from a provider's texts: Markdown, the API spec, a client snippet."""

from __future__ import annotations

from typing import Any

import yaml
from django.utils.safestring import SafeString

try:
    # One renderer for provider Markdown across the portal (the services app owns it).
    from services.rendering import render_markdown
except ImportError:  # pragma: no cover - only while the services app has not shipped it
    import markdown as _md
    import nh3
    from django.utils.safestring import mark_safe

    def render_markdown(text: str) -> SafeString:
        html = _md.markdown(text or "", extensions=["fenced_code", "tables", "sane_lists"])
        return mark_safe(nh3.clean(html, url_schemes={"http", "https", "mailto"}))  # noqa: S308 - cleaned by nh3


__all__ = ["load_spec", "python_snippet", "render_markdown", "spec_for_swagger"]


class SpecError(ValueError):
    """The stored spec cannot be read as an OpenAPI document."""


def load_spec(text: str) -> dict[str, Any]:
    """Parse a YAML or JSON OpenAPI document (safe_load: no Python objects)."""
    if not (text or "").strip():
        raise SpecError("This version has no API spec.")
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"The API spec cannot be read: {exc}") from exc
    if not isinstance(spec, dict):
        raise SpecError("The API spec is not an OpenAPI document.")
    return spec


def spec_for_swagger(text: str, *, endpoint_url: str) -> dict[str, Any]:
    """The spec with our gateway address as its server, so "Try it out" calls the real endpoint."""
    spec = load_spec(text)
    spec["servers"] = [{"url": endpoint_url.rstrip("/"), "description": "This platform's gateway"}]
    return spec


def _example_input(text: str) -> tuple[Any, Any]:
    """The request example of ``POST /`` when the spec has one, else empty input."""
    try:
        spec = load_spec(text)
        operation = spec["paths"]["/"]["post"]
        content = operation["requestBody"]["content"]["application/json"]
        example = content.get("example")
        if example is None and isinstance(content.get("examples"), dict) and content["examples"]:
            example = next(iter(content["examples"].values())).get("value")
    except (SpecError, KeyError, TypeError, AttributeError, StopIteration):
        example = None
    if isinstance(example, dict):
        return example.get("data", {}), example.get("params", {})
    return {}, {}


def _py(value: Any) -> str:
    # The input came from YAML/JSON, so repr() is a valid Python literal for it.
    return repr(value)


def python_snippet(*, endpoint_url: str, api_spec: str = "") -> str:
    """A ready script calling the service with the project's client (planqk_client)."""
    data, params = _example_input(api_spec)
    return f'''from planqk_client import PlanqkServiceClient

# The consumer key and secret of your subscribed application (Applications → your application).
client = PlanqkServiceClient(
    "{endpoint_url}",
    consumer_key="YOUR_CONSUMER_KEY",
    consumer_secret="YOUR_CONSUMER_SECRET",
)
execution = client.start_execution(data={_py(data)}, params={_py(params)})
final = client.wait_for_final_state(execution["id"], timeout=600)
print(final["status"])
print(client.get_result(execution["id"]))  # {{"result": ..., "metadata": ...}} or {{"code": ..., "detail": ...}}
'''
