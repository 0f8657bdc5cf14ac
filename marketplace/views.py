"""Marketplace pages: the catalogue, a service's page with its API, subscribing, plan management."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import strip_tags
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from applications import selectors as application_selectors
from applications.services import service_endpoint_url, subscription_create
from planqk_portal.errors import ApplicationError
from services.models import PlanKind, PricingPlan, Service, ServiceVersion
from services.selectors import gateway_url, service_get_owned

from . import selectors, services
from .badges import listing_badges
from .forms import MarketplaceFilterForm, PlanForm, SubscribeFlowForm, SubscribeForm
from .rendering import (
    SpecError,
    call_example,
    has_example,
    load_spec,
    python_snippet,
    render_markdown,
    spec_for_swagger,
)

PAGE_SIZE = 12


def _provider_name(service: Service) -> str:
    owner = service.owner
    # The e-mail address stays private: its local part, or the person's name, is enough.
    return owner.get_full_name() or owner.email.split("@", 1)[0]


@require_GET
def service_list(request: HttpRequest) -> HttpResponse:
    """Published services: search, filters, sorting, pages. An htmx request gets only the results."""
    form = MarketplaceFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    queryset = selectors.marketplace_service_list(
        search=filters.get("q", ""),
        quantum_backend=filters.get("backend", ""),
        pricing=filters.get("pricing", ""),
        ordering=filters.get("sort") or "newest",
    )
    page = Paginator(selectors.marketplace_listing_prefetch(queryset), PAGE_SIZE).get_page(request.GET.get("page"))
    for service in page.object_list:
        service.provider_name = _provider_name(service)
        service.listing = listing_badges(
            service=service,
            version=selectors.listing_version(service=service, versions=service.callable_versions),
            plans=service.active_plans,
            currency=settings.PLANQK_CURRENCY,
        )
        # Rendered then stripped, so Markdown syntax never shows in the short description.
        service.summary = strip_tags(render_markdown(service.description)).strip()
    query = urlencode({key: value for key, value in filters.items() if value})
    context = {
        "form": form,
        "page_obj": page,
        "services": page.object_list,
        "query": query,
        "filtered": any(filters.values()),
        "currency": settings.PLANQK_CURRENCY,
    }
    template = "marketplace/list.html#results" if request.htmx else "marketplace/list.html"
    return render(request, template, context)


def _service_or_404(request: HttpRequest, service_id: Any) -> Service:
    service = selectors.marketplace_service_get(service_id=service_id, user=request.user)
    if service is None:
        raise Http404("No such service in the marketplace.")
    return service


def _chosen_version(request: HttpRequest, service: Service) -> tuple[list[ServiceVersion], ServiceVersion | None]:
    versions = [*selectors.marketplace_versions(service=service)]
    wanted = request.GET.get("version")
    chosen = next((v for v in versions if v.version == wanted), None)
    return versions, chosen or selectors.listing_version(service=service, versions=versions)


def _detail_context(request: HttpRequest, service: Service, form: SubscribeForm | None = None) -> dict[str, Any]:
    versions, version = _chosen_version(request, service)
    plans = [*selectors.marketplace_plans(service=service)]
    applications = [*application_selectors.application_list(user=request.user)] if request.user.is_authenticated else []
    endpoint = service_endpoint_url(service=service, version=version, request=request) if version else ""
    spec_error = ""
    if version is not None:
        try:
            load_spec(version.api_spec)
        except SpecError as exc:
            spec_error = str(exc)
    if form is None and request.user.is_authenticated:
        form = SubscribeForm(applications=applications, plans=plans)
    flow_form = SubscribeFlowForm(applications=applications, plans=plans) if request.user.is_authenticated else None
    is_owner = request.user.is_authenticated and service.owner_id == request.user.pk
    return {
        "service": service,
        "description_html": render_markdown(service.description),
        "provider": _provider_name(service),
        "versions": versions,
        "version": version,
        "plans": plans,
        "applications": applications,
        "endpoint_url": endpoint,
        "spec_error": spec_error,
        "snippet": python_snippet(endpoint_url=endpoint, version=version, token_url=f"{gateway_url(request)}/token")
        if version
        else "",
        "has_example": has_example(version),
        "form": form,
        "subscribe_flow_form": flow_form,
        "is_owner": is_owner,
        "listing": listing_badges(service=service, version=version, plans=plans, currency=settings.PLANQK_CURRENCY),
        "is_listed": service.lifecycle == "PUBLISHED" and bool(versions),
        "has_paid_plan": any(plan.is_paid for plan in plans),
    }


@require_GET
def detail(request: HttpRequest, service_id: Any) -> HttpResponse:
    """A service's page: description, provider, versions, plans, API docs, endpoint, snippet, Subscribe."""
    service = _service_or_404(request, service_id)
    return render(request, "marketplace/detail.html", _detail_context(request, service))


@require_POST
def try_it(request: HttpRequest, service_id: Any) -> HttpResponse:
    """Try it: run the version's example input (the one the page's curl and Python examples send)
    as a job of the logged-in user, through admission like every other road. Admission decides
    (ownership or an active subscription); a user without a subscription is led to the
    subscribe flow, and any other refusal is shown on the service page."""
    from jobs.admission import execution_admit
    from jobs.models import JobSource
    from jobs.selectors import service_version_example, service_version_request_example

    service = _service_or_404(request, service_id)
    page = reverse("marketplace:detail", args=[service.pk])
    if not request.user.is_authenticated:
        return redirect(f"{reverse('account_login')}?{urlencode({'next': page})}")
    _, version = _chosen_version(request, service)
    if version is None:
        raise Http404("This service has no callable version.")
    page = f"{page}?{urlencode({'version': version.version})}"
    data, params = service_version_example(version=version)
    _, secrets = service_version_request_example(version=version)
    if data is None and params is None:
        messages.error(
            request,
            "This service's API spec gives no example input, so there is nothing to try. "
            "Create Job runs it with input of your own.",
        )
        return redirect(f"{page}#try")
    try:
        job = execution_admit(
            service_version=version,
            owner=request.user,
            data=data or {},
            params=params or {},
            secrets=secrets or None,
            source=JobSource.UI,
        )
    except ApplicationError as exc:
        if exc.code == "subscription:required":
            messages.info(request, f"Subscribe one of your applications to “{service.display_name}” to try it.")
            return redirect(f"{reverse('marketplace:subscribe', args=[service.pk])}")
        messages.error(request, exc.message)
        add_card_url = exc.extra.get("add_card_url") if exc.status == 402 else None
        if add_card_url:
            return redirect(f"{add_card_url}{'&' if '?' in add_card_url else '?'}{urlencode({'next': page})}")
        return redirect(f"{page}#try")
    messages.success(request, f"Started “{service.display_name}” {version.version} with its example input.")
    return redirect("jobs:detail", job_id=job.pk)


def _spec_version(request: HttpRequest, service_id: Any) -> tuple[Service, ServiceVersion]:
    service = _service_or_404(request, service_id)
    _, version = _chosen_version(request, service)
    if version is None:
        raise Http404("This service has no callable version.")
    return service, version


@require_GET
def openapi_json(request: HttpRequest, service_id: Any) -> HttpResponse:
    """The version's spec as JSON for Swagger UI, pointed at our gateway."""
    service, version = _spec_version(request, service_id)
    try:
        spec = spec_for_swagger(
            version.api_spec,
            endpoint_url=service_endpoint_url(service=service, version=version, request=request),
            token_url=f"{gateway_url(request)}/token",
        )
    except SpecError as exc:
        return JsonResponse({"code": "spec:unreadable", "detail": str(exc)}, status=404)
    return JsonResponse(spec, json_dumps_params={"ensure_ascii": False})


@require_GET
def openapi_download(request: HttpRequest, service_id: Any) -> HttpResponse:
    """The spec exactly as the provider uploaded it, as a file."""
    service, version = _spec_version(request, service_id)
    if not version.api_spec.strip():
        raise Http404("This version has no API spec.")
    text = version.api_spec
    is_json = text.lstrip().startswith("{")
    response = HttpResponse(text, content_type="application/json" if is_json else "application/yaml")
    filename = f"{service.name}-{version.version}-openapi.{'json' if is_json else 'yml'}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _call_examples(request: HttpRequest, service: Service, version: ServiceVersion | None) -> dict[str, str]:
    """curl for the service's first call, with the example body of its spec (or empty input)."""
    import json

    if version is None:
        return {"call_curl": "", "snippet": ""}
    endpoint = service_endpoint_url(service=service, version=version, request=request)
    body = json.dumps(call_example(version), ensure_ascii=False).replace("'", "'\\''")
    call = (
        f"curl -X POST '{endpoint}' -H 'Content-Type: application/json' "
        f"-H \"Authorization: Bearer $ACCESS_TOKEN\" \\\n     -d '{body}'"
    )
    return {
        "endpoint_url": endpoint,
        "call_curl": call,
        "status_curl": f"curl '{endpoint}<id>' -H \"Authorization: Bearer $ACCESS_TOKEN\"",
        "snippet": python_snippet(endpoint_url=endpoint, version=version, token_url=f"{gateway_url(request)}/token"),
    }


def _subscribe_flow(request: HttpRequest, service: Service, plans: list, applications: list) -> HttpResponse:
    """Subscribe in one flow: application (or a new one), plan, a card when the plan needs one
    (Settings → Payments brings you back here), the price to confirm, then how to call it."""
    from applications.services import application_create, token_curl_command, token_endpoint_url
    from payments.selectors import user_has_valid_card

    data = request.POST if request.method == "POST" else request.GET
    step = request.POST.get("step", "") if request.method == "POST" else ""
    bound = bool(data.get("plan"))
    form = SubscribeFlowForm(data if bound else None, applications=applications, plans=plans)
    _, version = _chosen_version(request, service)
    context: dict[str, Any] = {"service": service, "plans": plans, "form": form, "step": "choose", "version": version}
    status = 200
    if bound and form.is_valid():
        plan = next(p for p in plans if str(p.pk) == form.cleaned_data["plan"])
        application = next((a for a in applications if str(a.pk) == form.cleaned_data["application"]), None)
        new_name = "" if application else form.cleaned_data["new_application"].strip()
        choice = {
            "plan": plan.pk,
            **({"application": application.pk} if application else {"new_application": new_name}),
        }
        back = f"{reverse('marketplace:subscribe', args=[service.pk])}?{urlencode(choice)}"
        context.update(plan=plan, application=application, new_name=new_name, choice=choice)
        if plan.is_paid and not user_has_valid_card(user=request.user):
            context.update(step="card", add_card_url=f"{reverse('payments:index')}?{urlencode({'next': back})}")
        elif step == "confirm":
            try:
                issued = None
                with transaction.atomic():
                    if application is None:
                        issued = application_create(owner=request.user, name=new_name)
                        application = issued.application
                    subscription = subscription_create(application=application, service=service, plan=plan)
            except ApplicationError as exc:
                form.add_error("new_application" if exc.code.startswith("application:") else None, exc.message)
                context["step"] = "review"
                status = exc.status
            else:
                basic = issued.basic_auth if issued else None
                context.update(
                    step="done",
                    subscription=subscription,
                    application=application,
                    issued=issued,
                    token_curl=token_curl_command(basic_auth=basic, request=request)
                    if basic
                    else f'curl -X POST {token_endpoint_url(request)} -d "grant_type=client_credentials" '
                    f'-u "{application.consumer_key}:$CONSUMER_SECRET"',
                    **_call_examples(request, service, version),
                )
                messages.success(
                    request,
                    f"“{application.name}” is subscribed to “{service.display_name}” on the “{plan.name}” plan.",
                )
        else:
            context["step"] = "review"
    elif bound:
        status = 400
    return render(request, "marketplace/subscribe.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest, service_id: Any) -> HttpResponse:
    """Subscribe to this service: the flow (GET, or POST with ``step``), or in one POST with an
    existing application and a plan (what older pages and scripts send)."""
    service = _service_or_404(request, service_id)
    plans = [*selectors.marketplace_plans(service=service)]
    applications = [*application_selectors.application_list(user=request.user)]
    if request.method == "GET" or request.POST.get("step"):
        return _subscribe_flow(request, service, plans, applications)
    form = SubscribeForm(request.POST, applications=applications, plans=plans)
    if form.is_valid():
        try:
            application = application_selectors.application_get(
                user=request.user, application_id=form.cleaned_data["application"]
            )
            plan = PricingPlan.objects.get(pk=form.cleaned_data["plan"], service=service)
            subscription_create(application=application, service=service, plan=plan)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            context = _detail_context(request, service, form)
            context["needs_card"] = exc.code == "subscription:card-required"
            context["subscribe_error"] = exc.message
            return render(request, "marketplace/detail.html", context, status=exc.status)
        messages.success(
            request,
            f"“{application.name}” is subscribed to “{service.display_name}” on the “{plan.name}” plan. "
            "Its endpoint and credentials are below.",
        )
        return redirect("applications:detail", pk=application.pk)
    context = _detail_context(request, service, form)
    return render(request, "marketplace/detail.html", context, status=400)


# --- plans, for the service owner --------------------------------------------------------------


def _owned_or_404(request: HttpRequest, service_id: Any) -> Service:
    service = service_get_owned(user=request.user, service_id=service_id)
    if service is None:
        raise Http404("No such service among yours.")
    return service


def _plan_or_404(service: Service, plan_id: int) -> PricingPlan:
    plan = PricingPlan.objects.filter(service=service, pk=plan_id).first()
    if plan is None:
        raise Http404("No such plan.")
    return plan


def _terms(form: PlanForm) -> services.PlanTerms:
    data = form.cleaned_data
    return services.plan_terms_check(
        name=data["name"],
        kind=data["kind"],
        price_cents=form.price_cents,
        requests_per_minute=data["requests_per_minute"],
        max_concurrent=data["max_concurrent"],
    )


@login_required
@require_http_methods(["GET", "POST"])
def plans(request: HttpRequest, service_id: Any) -> HttpResponse:
    """The owner's plans: the ones offered now, the retired ones, and a form to add one."""
    service = _owned_or_404(request, service_id)
    form = PlanForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = services.pricing_plan_create(service=service, actor=request.user, terms=_terms(form))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Plan “{plan.name}” is offered to new subscribers.")
            return redirect("marketplace:plans", service_id=service.pk)
    all_plans = [*selectors.plan_list_for_owner(service=service)]
    context = {
        "service": service,
        "form": form,
        "active_plans": [p for p in all_plans if p.is_active],
        # Retired plans matter while subscriptions use them; the others only add length.
        "retired_plans": [p for p in all_plans if not p.is_active and p.active_subscriptions],
        "retired_unused": sum(1 for p in all_plans if not p.is_active and not p.active_subscriptions),
        "PlanKind": PlanKind,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "marketplace/plans.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def plan_change(request: HttpRequest, service_id: Any, plan_id: int) -> HttpResponse:
    """New terms for a plan; existing subscribers keep the old ones."""
    service = _owned_or_404(request, service_id)
    plan = _plan_or_404(service, plan_id)
    if not plan.is_active:
        messages.error(request, "That plan was retired or already changed; change the current one.")
        return redirect("marketplace:plans", service_id=service.pk)
    initial = {
        "name": plan.name,
        "kind": plan.kind,
        "price": plan.price_cents / 100 if plan.price_cents else None,
        "requests_per_minute": plan.requests_per_minute,
        "max_concurrent": plan.max_concurrent,
    }
    form = PlanForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            new = services.pricing_plan_change(plan=plan, actor=request.user, terms=_terms(form))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Plan “{new.name}” changed for new subscribers; existing subscriptions keep their terms."
            )
            return redirect("marketplace:plans", service_id=service.pk)
    subscribers = plan.subscriptions.filter(ended_at__isnull=True).count()
    context = {"service": service, "plan": plan, "form": form, "subscribers": subscribers}
    return render(request, "marketplace/plan_change.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def plan_retire(request: HttpRequest, service_id: Any, plan_id: int) -> HttpResponse:
    """Confirm, then stop offering a plan."""
    service = _owned_or_404(request, service_id)
    plan = _plan_or_404(service, plan_id)
    if request.method == "POST":
        try:
            services.pricing_plan_retire(plan=plan, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Plan “{plan.name}” is no longer offered. Existing subscriptions go on.")
        return redirect("marketplace:plans", service_id=service.pk)
    subscribers = plan.subscriptions.filter(ended_at__isnull=True).count()
    return render(
        request,
        "marketplace/plan_retire.html",
        {"service": service, "plan": plan, "subscribers": subscribers},
    )
