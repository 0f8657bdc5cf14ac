"""Blocks the Create Job page includes: the implementations the user may use, and the chosen service's API spec."""

from __future__ import annotations

from typing import Any

from django import template

from algorithms import selectors

register = template.Library()


@register.inclusion_tag("algorithms/includes/job_implementations.html", takes_context=True)
def job_implementations(context: Any) -> dict[str, Any]:
    """Implementations the user may use, each with its latest runnable file and the user's service from it."""
    request = context["request"]
    user = request.user
    implementations = list(selectors.implementation_list_visible(user=user))
    latest = selectors.implementation_files_latest_runnable(implementations=implementations)
    rows = [{"implementation": i, "file": latest[i.pk]} for i in implementations if i.pk in latest]
    files = [row["file"] for row in rows]
    made = selectors.services_from_files(user=user, files=files)
    for row in rows:
        row["service"] = made.get(row["file"].pk)
    return {
        "rows": rows,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "open": not context.get("has_services", True),
    }


@register.inclusion_tag("algorithms/includes/job_api_spec.html", takes_context=True)
def job_api_spec(context: Any) -> dict[str, Any]:
    """The API spec of the service chosen on Create Job (follows the select through htmx)."""
    from algorithms.views import chosen_service_spec

    request = context["request"]
    form = context.get("form")
    service_id = ""
    if form is not None and "service" in getattr(form, "fields", {}):
        service_id = str(form["service"].value() or "")
    return chosen_service_spec(user=request.user, service_id=service_id or request.GET.get("service", ""))
