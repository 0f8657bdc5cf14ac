"""Applications pages: create, credentials (secret shown once), subscriptions, delete."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from planqk_portal.errors import ApplicationError
from services.selectors import service_version_latest_callable

from . import selectors, services
from .forms import ApplicationForm, BudgetForm, SubscribeForm, price_label
from .models import Application

PAGE_SIZE = 20


def _application(request: HttpRequest, pk: object) -> Application:
    try:
        return selectors.application_get(user=request.user, application_id=pk)
    except ApplicationError:
        raise Http404("No such application.") from None


def _budget_initial(cents: int | None) -> dict[str, Any]:
    return {"budget": None if cents is None else f"{cents / 100:.2f}"}


def _subscription_rows(request: HttpRequest, application: Application) -> list[dict[str, Any]]:
    from payments.budgets import subscription_budget

    rows = []
    for subscription in selectors.subscription_list(application=application):
        version = service_version_latest_callable(service=subscription.service)
        rows.append(
            {
                "subscription": subscription,
                "budget": subscription_budget(subscription=subscription),
                "budget_form": BudgetForm(
                    initial={**_budget_initial(subscription.monthly_budget_cents), "subscription": subscription.pk},
                    prefix=f"s{str(subscription.pk)[:8]}",
                ),
                "price": price_label(
                    price_cents=subscription.price_cents, currency=subscription.currency, kind=subscription.plan_kind
                ),
                "endpoint": services.service_endpoint_url(
                    service=subscription.service, version=version, request=request
                )
                if version
                else None,
            }
        )
    return rows


def _detail_context(
    request: HttpRequest, application: Application, issued: services.IssuedCredentials | None = None
) -> dict[str, Any]:
    from payments.budgets import application_budget, budget_notice_list

    subscribable = list(selectors.service_list_subscribable(user=request.user))
    return {
        "application": application,
        "budget": application_budget(application=application),
        "budget_form": BudgetForm(initial=_budget_initial(application.monthly_budget_cents)),
        "budget_notices": [n for n in budget_notice_list(user=request.user) if n.application_id == application.pk],
        "issued": issued,
        "curl": services.token_curl_command(basic_auth=issued.basic_auth, request=request) if issued else None,
        "curl_template": (
            f'curl -X POST {services.token_endpoint_url(request)} -d "grant_type=client_credentials" '
            f'-u "{application.consumer_key}:$CONSUMER_SECRET"'
        ),
        "token_endpoint": services.token_endpoint_url(request),
        "rows": _subscription_rows(request, application),
        "subscribe_form": SubscribeForm(services=subscribable, user=request.user),
        "has_subscribable": any(service.plans.all() for service in subscribable),
    }


@login_required
@require_http_methods(["GET", "POST"])
def application_list(request: HttpRequest) -> HttpResponse:
    """List applications and create one; a new application's secret is shown on this response only."""
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.application_create(
                owner=request.user, name=form.cleaned_data["name"], description=form.cleaned_data["description"]
            )
        except ApplicationError as exc:
            form.add_error("name" if exc.code.startswith("application:name") else None, exc.message)
        else:
            messages.success(request, f"Application “{issued.application.name}” created.")
            return render(request, "applications/detail.html", _detail_context(request, issued.application, issued))
    page = Paginator(selectors.application_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "applications/list.html",
        {"form": form, "page_obj": page, "applications": page.object_list},
    )


@login_required
def application_detail(request: HttpRequest, pk: object) -> HttpResponse:
    return render(request, "applications/detail.html", _detail_context(request, _application(request, pk)))


@login_required
@require_http_methods(["GET", "POST"])
def application_regenerate(request: HttpRequest, pk: object) -> HttpResponse:
    """Confirm, then issue a new secret (shown once); the old secret and its tokens stop working."""
    application = _application(request, pk)
    if request.method == "POST":
        issued = services.application_regenerate_secret(application=application)
        messages.success(request, "New consumer secret issued. The old secret and its access tokens no longer work.")
        return render(request, "applications/detail.html", _detail_context(request, application, issued))
    return render(
        request,
        "confirm.html",
        {
            "title": f"Regenerate the secret of “{application.name}”?",
            "message": "The current consumer secret and every access token obtained with it stop working at once. "
            "The new secret is shown only once.",
            "confirm_label": "Regenerate secret",
            "cancel_url": "applications:list",
            "cancel_href": reverse("applications:detail", args=[application.pk]),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def application_delete(request: HttpRequest, pk: object) -> HttpResponse:
    application = _application(request, pk)
    if request.method == "POST":
        services.application_delete(application=application)
        messages.success(request, f"Application “{application.name}” deleted; its credentials no longer work.")
        return redirect("applications:list")
    count = application.subscriptions.filter(ended_at__isnull=True).count()
    return render(
        request,
        "confirm.html",
        {
            "title": f"Delete application “{application.name}”?",
            "message": f"Its consumer key and secret stop working at once and its {count} subscription(s) end. "
            "Executions already running finish and are still billed. This cannot be undone.",
            "confirm_label": "Delete application",
            "cancel_url": "applications:list",
            "cancel_href": reverse("applications:detail", args=[application.pk]),
        },
    )


@login_required
@require_POST
def budget(request: HttpRequest, pk: object) -> HttpResponse:
    """Set or remove the monthly budget of the application or (``subscription`` given) one subscription."""
    application = _application(request, pk)
    prefix = request.POST.get("prefix") or None
    form = BudgetForm(request.POST, prefix=prefix)
    if not form.is_valid():
        messages.error(request, "Enter a budget of 0 or more, with at most two decimals, or leave it empty.")
        return redirect("applications:detail", pk=application.pk)
    subscription = None
    if form.cleaned_data.get("subscription"):
        try:
            subscription = selectors.subscription_get(
                application=application, subscription_id=form.cleaned_data["subscription"]
            )
        except ApplicationError:
            raise Http404("No such subscription.") from None
    services.budget_set(application=application, subscription=subscription, budget_cents=form.budget_cents)
    what = f"“{subscription.service.display_name}”" if subscription else f"“{application.name}”"
    if form.budget_cents is None:
        messages.success(request, f"{what} has no monthly budget now.")
    else:
        messages.success(request, f"The monthly budget of {what} is {form.budget_cents / 100:.2f} now.")
    return redirect("applications:detail", pk=application.pk)


@login_required
@require_POST
def subscribe(request: HttpRequest, pk: object) -> HttpResponse:
    application = _application(request, pk)
    form = SubscribeForm(
        request.POST, services=list(selectors.service_list_subscribable(user=request.user)), user=request.user
    )
    if not form.is_valid():
        messages.error(request, "Choose a service and one of its pricing plans.")
        return redirect("applications:detail", pk=application.pk)
    try:
        plan = selectors.plan_get_subscribable(user=request.user, plan_id=form.cleaned_data["plan"])
        subscription = services.subscription_create(application=application, service=plan.service, plan=plan)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Subscribed to “{subscription.service.display_name}” ({plan.name}).")
    return redirect("applications:detail", pk=application.pk)


@login_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, pk: object, sid: object) -> HttpResponse:
    application = _application(request, pk)
    try:
        subscription = selectors.subscription_get(application=application, subscription_id=sid)
    except ApplicationError:
        raise Http404("No such subscription.") from None
    if request.method == "POST":
        services.subscription_end(subscription=subscription)
        messages.success(request, f"Unsubscribed from “{subscription.service.display_name}”.")
        return redirect("applications:detail", pk=application.pk)
    return render(
        request,
        "confirm.html",
        {
            "title": f"Unsubscribe from “{subscription.service.display_name}”?",
            "message": f"“{application.name}” can no longer call this service. Executions already running finish "
            "and are still billed. You can subscribe again later.",
            "confirm_label": "Unsubscribe",
            "cancel_url": "applications:list",
            "cancel_href": reverse("applications:detail", args=[application.pk]),
        },
    )
