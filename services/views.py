"""My Services pages: thin views over services.services and services.selectors."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import provider_has_token
from hosts.selectors import VersionWarm, version_warm
from marketplace.services import PlanTerms, plan_terms_check, plan_terms_list_check
from payments.selectors import user_has_valid_card
from planqk_portal.errors import ApplicationError
from planqk_portal.logs import HTMX_STOP_POLLING, render_log_poll

from . import selectors, services, upload_handlers
from .forms import PublishForm, ServiceCreateForm, ServiceEditForm, ServiceVersionForm, field_for_error
from .models import BuildStatus, Lifecycle, PricingPlan, QuantumBackend, Service, ServiceVersion, SourceType
from .rendering import summarize_api_spec

PAGE_SIZE = 20


def _service_or_404(request: HttpRequest, service_id: Any) -> Service:
    service = selectors.service_get_owned(user=request.user, service_id=service_id)
    if service is None:
        raise Http404("No such service.")
    return service


def _version_or_404(request: HttpRequest, service_id: Any, version_id: Any) -> ServiceVersion:
    version = selectors.service_version_get(service=_service_or_404(request, service_id), version_id=version_id)
    if version is None:
        raise Http404("No such version.")
    return version


def log_context(version: ServiceVersion | None) -> dict[str, Any]:
    """What the build panel needs to render a version's log and keep polling it."""
    if version is None:
        return {}
    final = version.is_final
    chunks = list(selectors.build_log_chunks(version=version))
    return {
        "log_chunks": chunks,
        "log_last": chunks[-1].seq if chunks else 0,
        "log_final": final,
        "log_poll_url": reverse("services:version-logs", args=[version.service_id, version.pk]),
    }


def _backend_options(user: Any) -> list[dict[str, Any]]:
    """The backends with whether the user may choose them (IBM and D-Wave need a stored token)."""
    options = []
    for backend in QuantumBackend:
        provider = {"IBM": "IBM", "DWAVE": "DWAVE"}.get(backend.value)
        options.append(
            {
                "value": backend.value,
                "label": backend.label,
                "available": provider is None or provider_has_token(user=user, provider=provider),
            }
        )
    return options


def _warm_of(version: ServiceVersion | None) -> VersionWarm | None:
    """Whether ``version`` is warm on the live hosts (hosts.selectors.version_warm), or None where
    it cannot be: not built, or an imported URL service (it runs elsewhere)."""
    if version is None or version.status != BuildStatus.READY or not version.runtime:
        return None
    if version.runtime == services.EXTERNAL_RUNTIME:
        return None
    return version_warm(version_id=version.pk, runtime=version.runtime)


def _show_error(form: Any, exc: ApplicationError) -> None:
    form.add_error(field_for_error(exc.code, form), f"{exc.message} ({exc.code})")


@login_required
@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    """My Services: every own service with the state of its latest build."""
    page = Paginator(selectors.service_list_owned(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "services/list.html", {"page_obj": page, "services": page.object_list})


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def service_create(request: HttpRequest) -> HttpResponse:
    """Create Service: the properties providers know, then the first build starts."""
    # The size-limited upload handler must be in place before the CSRF check reads the body.
    handler = upload_handlers.install(request) if request.method == "POST" else None
    return _service_create(request, handler)


def _create_form_plans(form: ServiceCreateForm) -> list[PlanTerms] | None:
    """The form's plans checked by the marketplace's rules; None when one is refused (shown at its field)."""
    items = form.plan_items()
    for field, terms in items:
        try:
            plan_terms_check(**terms)
        except ApplicationError as exc:
            form.add_error(field, f"{terms['name']}: {exc.message} ({exc.code})")
    if form.errors:
        return None
    try:
        return plan_terms_list_check([terms for _, terms in items])
    except ApplicationError as exc:
        _show_error(form, exc)
        return None


@csrf_protect
def _service_create(request: HttpRequest, handler: upload_handlers.LimitedUploadHandler | None) -> HttpResponse:
    form = ServiceCreateForm(request.POST or None, request.FILES or None)
    if handler is not None and handler.refused:
        form.is_valid()
        _show_error(form, upload_handlers.too_large_error())
    elif request.method == "POST" and form.is_valid() and (plans := _create_form_plans(form)) is not None:
        values = form.cleaned_data
        from_file = values["source"] == SourceType.FILE
        try:
            service = services.service_create(
                plans=plans,
                owner=request.user,
                name=values["name"],
                title=values["title"],
                description=values["description"],
                quantum_backend=values["quantum_backend"],
                archive=values["file"] if from_file else None,
                external_url="" if from_file else values["external_url"],
                api_spec=values["api_spec"],
                memory_mb=values["memory_mb"],
                cpus=values["cpus"],
                timeout_seconds=values["timeout_seconds"],
                version=values["version"] or None,
                skip_example_run=bool(values.get("skip_example_run")),
            )
        except ApplicationError as exc:
            _show_error(form, exc)
        else:
            if service.source == SourceType.FILE:
                messages.success(request, f"Service {service.name} created; its build has started.")
            else:
                messages.success(request, f"Service {service.name} created; it fronts {service.external_url}.")
            return redirect("services:detail", service_id=service.pk)
    context = {
        "form": form,
        "backends": _backend_options(request.user),
        "providers_url": reverse("accounts:providers"),
        "needs_card": not user_has_valid_card(user=request.user),
    }
    return render(request, "services/create.html", context)


def _state_context(request: HttpRequest, service: Service) -> dict[str, Any]:
    """What the live part of the service page shows: read together so its pieces agree."""
    versions = Paginator(selectors.service_version_list(service=service), PAGE_SIZE).get_page(request.GET.get("page"))
    latest = selectors.service_version_latest(service=service)
    callable_version = selectors.service_version_latest_callable(service=service)
    return {
        "service": service,
        "page_obj": versions,
        "versions": versions.object_list,
        "latest": latest,
        "callable_version": callable_version,
        "state_final": latest is None or latest.is_final,
        "Lifecycle": Lifecycle,
        "endpoint_url": (
            selectors.service_endpoint_url(service=service, version=callable_version, request=request)
            if callable_version
            else ""
        ),
    }


@login_required
@require_GET
def service_state(request: HttpRequest, service_id: Any) -> HttpResponse:
    """htmx poll of the service page's state (endpoint, publish buttons, versions, build status); 286 when final."""
    service = _service_or_404(request, service_id)
    context = _state_context(request, service)
    response = render(request, "services/includes/service_state.html", context)
    if context["state_final"]:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_GET
def service_detail(request: HttpRequest, service_id: Any) -> HttpResponse:
    """A service: its endpoint, versions, the latest build's log, the API spec and the plans."""
    service = _service_or_404(request, service_id)
    state = _state_context(request, service)
    latest, callable_version = state["latest"], state["callable_version"]
    context = {
        **state,
        "spec": summarize_api_spec((callable_version or latest).api_spec if (callable_version or latest) else ""),
        "spec_text": (callable_version or latest).api_spec if (callable_version or latest) else "",
        "plans": service.plans.filter(is_active=True),
        # The version callers reach now: is its start-up skipped (warm runners)?
        "warm": _warm_of(callable_version),
        **log_context(latest),
    }
    return render(request, "services/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def service_edit(request: HttpRequest, service_id: Any) -> HttpResponse:
    """Change the display name, description, backend and resources (the name stays)."""
    service = _service_or_404(request, service_id)
    initial = {
        "title": service.title,
        "description": service.description,
        "quantum_backend": service.quantum_backend,
        "memory_mb": service.memory_mb,
        "cpus": service.cpus,
        "timeout_seconds": service.timeout_seconds,
        "retry_on_host_loss": service.retry_on_host_loss,
    }
    form = ServiceEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.service_update(service=service, **form.cleaned_data)
        except ApplicationError as exc:
            _show_error(form, exc)
        else:
            messages.success(request, "Service updated.")
            return redirect("services:detail", service_id=service.pk)
    context = {
        "form": form,
        "service": service,
        "backends": _backend_options(request.user),
        "providers_url": reverse("accounts:providers"),
    }
    return render(request, "services/edit.html", context)


@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def version_create(request: HttpRequest, service_id: Any) -> HttpResponse:
    """Upload a new version; it builds beside the running one."""
    handler = upload_handlers.install(request) if request.method == "POST" else None
    return _version_create(request, service_id, handler)


@csrf_protect
def _version_create(
    request: HttpRequest, service_id: Any, handler: upload_handlers.LimitedUploadHandler | None
) -> HttpResponse:
    service = _service_or_404(request, service_id)
    form = ServiceVersionForm(
        request.POST or None, request.FILES or None, initial={"skip_example_run": service.skip_example_run}
    )
    if handler is not None and handler.refused:
        form.is_valid()
        _show_error(form, upload_handlers.too_large_error())
    elif request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        try:
            version = services.service_version_create(
                service=service,
                user=request.user,
                archive=values["file"],
                external_url=values["external_url"],
                api_spec=values["api_spec"],
                version=values["version"] or None,
                skip_example_run=values["skip_example_run"],
            )
        except ApplicationError as exc:
            _show_error(form, exc)
        else:
            messages.success(request, f"Version {version.version} uploaded.")
            return redirect("services:version", service_id=service.pk, version_id=version.pk)
    next_label = services.next_version(
        list(selectors.service_version_list(service=service).values_list("version", flat=True))
    )
    return render(request, "services/version_new.html", {"form": form, "service": service, "next_version": next_label})


@login_required
@require_GET
def version_detail(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    """One version: its build status, error and live log."""
    version = _version_or_404(request, service_id, version_id)
    service = version.service
    context = {
        "service": service,
        "version": version,
        "endpoint_url": (
            selectors.service_endpoint_url(service=service, version=version, request=request)
            if version.is_callable
            else ""
        ),
        "warm": _warm_of(version),
        **log_context(version),
    }
    return render(request, "services/version_detail.html", context)


@login_required
@require_GET
def version_status(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    """htmx poll of a build's status badge; 286 (stop polling) at a final state."""
    version = _version_or_404(request, service_id, version_id)
    response = render(request, "services/includes/build_status.html", {"version": version, "service": version.service})
    if version.is_final:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_GET
def version_logs(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    """htmx poll of a build's log: only newer chunks; 286 once the build has ended."""
    version = _version_or_404(request, service_id, version_id)
    final = version.is_final  # read before the chunks, so none written before the end is missed
    response = render_log_poll(
        request,
        selectors.build_log_chunks(version=version),
        poll_url=reverse("services:version-logs", args=[version.service_id, version.pk]),
        final=final,
    )
    if final and request.headers.get("HX-Request"):
        # The page was rendered while building: reload it once so the endpoint and actions appear.
        response["HX-Refresh"] = "true"
    return response


def _act(request: HttpRequest, action: Any, success: str, **kwargs: Any) -> None:
    try:
        action(**kwargs)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)


@login_required
@require_POST
def service_publish_internal(request: HttpRequest, service_id: Any) -> HttpResponse:
    service = _service_or_404(request, service_id)
    _act(
        request,
        services.service_publish_internal,
        f"{service.name} is published for internal use: subscribe one of your applications to call it.",
        service=service,
    )
    return redirect("services:detail", service_id=service.pk)


@login_required
@require_POST
def service_publish(request: HttpRequest, service_id: Any) -> HttpResponse:
    service = _service_or_404(request, service_id)
    _act(request, services.service_publish, f"{service.name} is published in the marketplace.", service=service)
    return redirect("services:detail", service_id=service.pk)


@login_required
@require_http_methods(["GET", "POST"])
def service_publish_flow(request: HttpRequest, service_id: Any) -> HttpResponse:
    """Publish in steps: visibility, plans, the default version, a preview of the listing, confirm."""
    from marketplace.badges import listing_badges

    service = _service_or_404(request, service_id)
    versions = [v for v in selectors.service_version_list(service=service) if v.is_callable]
    plans = list(service.plans.filter(is_active=True))
    step = request.POST.get("step", "choose") if request.method == "POST" else "choose"
    initial = {"version": str(service.published_version_id or (versions[0].pk if versions else ""))}
    if request.GET.get("lifecycle") in (Lifecycle.ACCESSIBLE, Lifecycle.PUBLISHED):
        initial["lifecycle"] = request.GET["lifecycle"]
    form = PublishForm(request.POST if step != "choose" else None, versions=versions, plans=plans, initial=initial)
    context: dict[str, Any] = {
        "service": service,
        "form": form,
        "versions": versions,
        "plans": plans,
        "currency": settings.PLANQK_CURRENCY,
    }
    if not versions:
        context["step"] = "no-version"
        return render(request, "services/publish.html", context)
    context["step"] = "choose"
    if step in ("preview", "confirm") and form.is_valid():
        values = form.cleaned_data
        new_terms = None
        raw = form.new_plan_terms()
        try:
            new_terms = plan_terms_check(**raw) if raw else None
        except ApplicationError as exc:
            form.add_error("new_price" if "price" in exc.code else "new_kind", f"{exc.message} ({exc.code})")
        kept = [p for p in plans if str(p.pk) in values["keep_plans"]]
        if not form.errors and not kept and new_terms is None:
            form.add_error("keep_plans", "Offer at least one pricing plan (Free is enough). (plan:none)")
        version = next(v for v in versions if str(v.pk) == values["version"])
        if not form.errors and step == "confirm":
            try:
                services.service_release(
                    service=service,
                    actor=request.user,
                    lifecycle=values["lifecycle"],
                    version=version,
                    keep_plan_ids=[p.pk for p in kept],
                    new_plans=[new_terms] if new_terms else [],
                )
            except ApplicationError as exc:
                form.add_error(None, f"{exc.message} ({exc.code})")
            else:
                where = "in the marketplace" if values["lifecycle"] == Lifecycle.PUBLISHED else "for internal use"
                messages.success(
                    request, f"{service.display_name} is published {where} with version {version.version}."
                )
                return redirect("services:detail", service_id=service.pk)
        if not form.errors:
            preview_plans = [*kept, *([PricingPlan(service=service, **_plan_fields(new_terms))] if new_terms else [])]
            context.update(
                step="preview",
                version=version,
                preview_plans=preview_plans,
                listing=listing_badges(
                    service=service, version=version, plans=preview_plans, currency=settings.PLANQK_CURRENCY
                ),
                lifecycle=values["lifecycle"],
            )
    return render(request, "services/publish.html", context, status=400 if form.errors else 200)


def _plan_fields(terms: PlanTerms) -> dict[str, Any]:
    return {
        "name": terms.name,
        "kind": terms.kind,
        "price_cents": terms.price_cents,
        "requests_per_minute": terms.requests_per_minute,
        "max_concurrent": terms.max_concurrent,
    }


@login_required
@require_POST
def service_unpublish(request: HttpRequest, service_id: Any) -> HttpResponse:
    service = _service_or_404(request, service_id)
    _act(request, services.service_unpublish, f"{service.name} is no longer published.", service=service)
    return redirect("services:detail", service_id=service.pk)


@login_required
@require_http_methods(["GET", "POST"])
def service_delete(request: HttpRequest, service_id: Any) -> HttpResponse:
    """Confirm, then delete (refused while applications are subscribed)."""
    service = _service_or_404(request, service_id)
    if request.method == "POST":
        try:
            services.service_delete(service=service)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("services:detail", service_id=service.pk)
        messages.success(request, f"Service {service.name} deleted.")
        return redirect("services:list")
    return render(request, "services/confirm_delete.html", {"service": service})


@login_required
@require_POST
def version_cancel(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    version = _version_or_404(request, service_id, version_id)
    _act(request, services.service_version_cancel, f"Cancelling the build of {version.version}.", version=version)
    return redirect("services:version", service_id=version.service_id, version_id=version.pk)


@login_required
@require_POST
def version_retry(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    version = _version_or_404(request, service_id, version_id)
    _act(request, services.service_version_retry, f"Building {version.version} again.", version=version)
    return redirect("services:version", service_id=version.service_id, version_id=version.pk)


@login_required
@require_POST
def version_unpublish(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    version = _version_or_404(request, service_id, version_id)
    _act(
        request,
        services.service_version_unpublish,
        f"Version {version.version} is no longer callable.",
        version=version,
    )
    return redirect("services:detail", service_id=version.service_id)


@login_required
@require_GET
def version_archive(request: HttpRequest, service_id: Any, version_id: Any) -> HttpResponse:
    """The uploaded code of a version, for its owner only (another user's is a 404, like the page).

    Checked on every request and handed over by planqk_portal.downloads (never from /media/)."""
    from django.core.files.storage import default_storage

    from planqk_portal.downloads import stored_file_response

    version = _version_or_404(request, service_id, version_id)
    name = version.archive.name if version.archive else ""
    if not name or not default_storage.exists(name):
        raise Http404("This version has no uploaded archive.")
    return stored_file_response(
        name=name,
        filename=f"{version.service.name}-{version.version}.zip",
        content_type="application/zip",
        headers={"X-Content-Type-Options": "nosniff"},
    )
