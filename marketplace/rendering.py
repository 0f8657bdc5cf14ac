"""What the service page derives from a provider's texts: Markdown, the API spec, a client snippet."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

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


__all__ = [
    "PLACEHOLDERS",
    "call_example",
    "has_example",
    "load_spec",
    "python_snippet",
    "render_markdown",
    "spec_for_swagger",
    "spec_make_safe",
    "spec_placeholder_text",
]


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


def spec_for_swagger(text: str, *, endpoint_url: str, token_url: str) -> dict[str, Any]:
    """The spec as Swagger UI may see it: parsed, made safe by ``spec_make_safe``, and without the
    template's placeholder sentences (its provider sees a warning until they are replaced)."""
    safe = spec_make_safe(load_spec(text), endpoint_url=endpoint_url, token_url=token_url)
    return _without_placeholders(safe)


#: The user code template's placeholder text (older templates, and PlanQK's own): it describes
#: nothing. A spec that still has it gets a warning for its provider (``spec_placeholder_text``)
#: and subscribers never read it (``spec_for_swagger`` drops the sentences that hold it).
PLACEHOLDERS = (
    re.compile(r"Adapt the\s+`?InputData`?", re.IGNORECASE),
    re.compile(r"Describe your service'?s input here", re.IGNORECASE),
    re.compile(r"Describe your service'?s output here", re.IGNORECASE),
)
# A sentence ends at ., ! or ? followed by white space (a line break inside a sentence is not an end).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")


def spec_placeholder_text(api_spec: str) -> list[str]:
    """The template placeholder phrases left in a spec's text (YAML comments do not count: they
    never reach a page)."""
    import json

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


def _strip_placeholder_sentences(text: str) -> str:
    if not any(pattern.search(text) for pattern in PLACEHOLDERS):
        return text
    paragraphs = []
    for paragraph in _PARAGRAPH.split(text.strip()):
        if not any(pattern.search(paragraph) for pattern in PLACEHOLDERS):
            paragraphs.append(paragraph)  # as written: its line breaks may be Markdown
            continue
        sentences = _SENTENCE_END.split(paragraph.strip())
        kept = [s for s in sentences if not any(pattern.search(s) for pattern in PLACEHOLDERS)]
        if kept:
            paragraphs.append(" ".join(kept))
    return "\n\n".join(paragraphs)


def _without_placeholders(node: Any, parent_key: str = "") -> Any:
    """Every text of the document without its placeholder sentences (a text of nothing else
    becomes empty: OpenAPI requires some descriptions). Examples and defaults are the provider's
    data and stay as they are."""
    if parent_key in _DATA_KEYS:
        return node
    if isinstance(node, list):
        return [_without_placeholders(item) for item in node]
    if isinstance(node, str):
        return _strip_placeholder_sentences(node)
    if not isinstance(node, dict):
        return node
    return {key: _without_placeholders(value, parent_key=key) for key, value in node.items()}


# Keys whose value is a URL a reader may click (kept only when http or https, never fetched).
_LINK_KEYS = frozenset({"termsOfService", "url"})
# Maps whose keys are names the provider chose (a field may be called "servers" or "x-id").
_NAMED_MAPS = frozenset({
    "properties", "patternProperties", "schemas", "responses", "parameters", "examples", "requestBodies",
    "headers", "securitySchemes", "securityDefinitions", "definitions", "links", "callbacks", "pathItems",
    "paths", "webhooks", "content", "encoding", "variables", "scopes", "mapping",
})  # fmt: skip
# Values that are the provider's data (examples, defaults), shown as they are.
_DATA_KEYS = frozenset({"example", "value", "default", "enum", "const"})
_OAUTH_FLOW_URLS = ("authorizationUrl", "tokenUrl", "refreshUrl")


# Swagger UI renders descriptions as Markdown: an image would be fetched from wherever it points.
_MARKDOWN_IMAGE = re.compile(r"!\[")
_HTML_IMAGE = re.compile(r"<(?=\s*(img|image|picture|source|video|audio|iframe|object|embed)\b)", re.IGNORECASE)


def _without_images(text: str) -> str:
    """Markdown images become plain links and HTML media tags plain text: shown, never loaded."""
    return _HTML_IMAGE.sub("&lt;", _MARKDOWN_IMAGE.sub("[", text))


def _is_web_link(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value.strip()).scheme in {"http", "https"}


def _safe_security_scheme(scheme: Any, *, token_url: str) -> Any:
    """OAuth2 and OpenID Connect schemes become client credentials on our token endpoint.

    The platform's only grant is client credentials at ``{GATEWAY_URL}/token``; any other URL in
    a scheme would receive what a subscriber types into Swagger UI's Authorize dialog.
    """
    if not isinstance(scheme, dict):
        return scheme
    kind = scheme.get("type")
    if kind not in {"oauth2", "openIdConnect"}:
        return scheme
    flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
    scopes: dict[str, str] = {}
    for flow in flows.values():
        if isinstance(flow, dict) and isinstance(flow.get("scopes"), dict):
            scopes.update({str(k): str(v) for k, v in flow["scopes"].items()})
    safe = {k: v for k, v in scheme.items() if k not in {"flows", "openIdConnectUrl", *_OAUTH_FLOW_URLS}}
    safe["type"] = "oauth2"
    safe["flows"] = {"clientCredentials": {"tokenUrl": token_url, "scopes": scopes}}
    return safe


def _scrub(node: Any, *, servers: list[dict[str, str]], parent_key: str = "") -> Any:
    """Walk the document: servers at every level, external references, extensions, link URLs."""
    if parent_key in _DATA_KEYS:
        return node
    if isinstance(node, list):
        return [_scrub(item, servers=servers) for item in node]
    if not isinstance(node, dict):
        return node
    clean: dict[str, Any] = {}
    for key, value in node.items():
        if not isinstance(key, str):
            continue
        # Only OpenAPI's own keys go, never a name the provider chose for a field or a schema.
        if parent_key not in _NAMED_MAPS:
            if key.startswith("x-"):
                continue  # extensions carry provider URLs (logos, code samples) Swagger UI may load
            if key == "servers" and isinstance(value, list):
                clean[key] = [dict(server) for server in servers]
                continue
            if key == "server" and isinstance(value, dict):  # a Link Object's server
                clean[key] = dict(servers[0])
                continue
            if key == "$ref" and not (isinstance(value, str) and value.startswith("#")):
                continue  # another document: Swagger UI would fetch it from wherever it points
            if key in {"externalValue", "operationRef"}:
                continue  # a URL of another document, fetched or followed by tools
            if key in _LINK_KEYS and isinstance(value, str) and not _is_web_link(value):
                continue
            if key == "description" and isinstance(value, str):
                clean[key] = _without_images(value)
                continue
        clean[key] = _scrub(value, servers=servers, parent_key=key)
    return clean


def spec_make_safe(spec: dict[str, Any], *, endpoint_url: str, token_url: str) -> dict[str, Any]:
    """A provider's spec that cannot send a subscriber's credentials or calls anywhere but to us.

    Every ``servers`` (document, path and operation level, links) becomes the version's gateway
    endpoint, every OAuth2 or OpenID Connect scheme becomes client credentials on the platform's
    token endpoint, and references to other documents, ``externalValue`` and ``x-`` extensions
    are removed. Swagger 2.0 documents get our host, base path and scheme. The one function
    every rendering of a provider's spec goes through (``openapi_json``).
    """
    endpoint = endpoint_url.rstrip("/")
    servers = [{"url": endpoint, "description": "This platform's gateway"}]
    safe = _scrub(spec, servers=servers)
    safe["servers"] = [dict(server) for server in servers]
    components = safe.get("components")
    if isinstance(components, dict) and isinstance(components.get("securitySchemes"), dict):
        components["securitySchemes"] = {
            name: _safe_security_scheme(scheme, token_url=token_url)
            for name, scheme in components["securitySchemes"].items()
        }
    if "swagger" in safe:  # Swagger 2.0: the server is host + basePath + schemes
        parts = urlsplit(endpoint)
        safe.pop("servers")
        safe.update(host=parts.netloc, basePath=parts.path or "/", schemes=[parts.scheme or "https"])
        if isinstance(safe.get("securityDefinitions"), dict):
            safe["securityDefinitions"] = {
                name: (
                    {
                        **{k: v for k, v in scheme.items() if k not in {"authorizationUrl", "tokenUrl", "flow"}},
                        "flow": "application",
                        "tokenUrl": token_url,
                    }
                    if isinstance(scheme, dict) and scheme.get("type") == "oauth2"
                    else scheme
                )
                for name, scheme in safe["securityDefinitions"].items()
            }
    return safe


def call_example(version: Any) -> dict[str, Any]:
    """The body of the version's example call as a caller sends it, from the one rule
    (``jobs.selectors.service_version_request_example``, also Create Job's prefill, Try it and
    the build's smoke test): 2022 ``{"data", "params"}`` (empty input without an example), the
    current generation's top-level keys plus the example's ``$secrets``."""
    from jobs.selectors import is_current_generation, service_version_request_example

    body, secrets = service_version_request_example(version=version)
    if is_current_generation(version):
        return {**(body or {}), **({"$secrets": secrets} if secrets else {})}
    return body or {"data": {}, "params": {}}


def has_example(version: Any) -> bool:
    from jobs.selectors import service_version_request_example

    return version is not None and service_version_request_example(version=version)[0] is not None


def _py(value: Any) -> str:
    # The input came from YAML/JSON, so repr() is a valid Python literal for it.
    return repr(value)


def python_snippet(*, endpoint_url: str, version: Any, token_url: str = "") -> str:
    """A ready script calling the service: the project's client (planqk_client) for the 2022
    generation, Kipu's ``qhub-service`` client for the current one."""
    from jobs.selectors import is_current_generation

    body = call_example(version)
    if is_current_generation(version):
        secrets = body.pop("$secrets", None)
        return f'''from qhub.service.client import HubServiceClient  # pip install qhub-service

# The consumer key and secret of your subscribed application (Applications → your application).
client = HubServiceClient(
    "{endpoint_url}",
    "YOUR_CONSUMER_KEY",
    "YOUR_CONSUMER_SECRET",
    token_endpoint="{token_url}",
)
execution = client.run(request={_py(body)}{f", secrets={_py(secrets)}" if secrets else ""})
execution.wait_for_final_state()
print(execution.status)
print(execution.result().data(), execution.result_files())
'''
    data, params = body.get("data", {}), body.get("params", {})
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
