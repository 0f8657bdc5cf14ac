"""Settings → Payments: cards, invoices (as a subscriber), earnings (as a provider); Stripe webhooks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from planqk_portal.errors import ApplicationError

from . import selectors, services
from . import usage as usage_reports
from .forms import CardForm
from .gateways import get_gateway

# What Stripe.js needs beside the portal's own Content-Security-Policy, on the card page only.
STRIPE_ELEMENTS_CSP = {
    "script-src": ["https://js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
}

PAGE_SIZE = 20


def _next_url(request: HttpRequest) -> str:
    """Where to go after adding a card (e.g. back to Create Service), only within this site."""
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """Cards (add with our form or Stripe Elements, remove), the latest invoices, earnings in short."""
    try:
        gateway = get_gateway()
    except (ApplicationError, ImproperlyConfigured) as exc:
        # A deployment mistake: say so on the page rather than failing with a 500.
        message = exc.message if isinstance(exc, ApplicationError) else str(exc)
        return render(
            request,
            "coming_soon.html",
            {"title": "Payments", "hint": f"Payments are not configured: {message}"},
            status=503,
        )
    form = CardForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if gateway.uses_stripe_elements:
            form = CardForm()
            messages.error(request, "Enter the card in Stripe's card form.")
            status = 400
        elif form.is_valid():
            try:
                card = services.card_add_number(user=request.user, **form.card_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = exc.status if 400 <= exc.status < 500 else 400
            else:
                messages.success(request, f"Card {card} added. You can create services and buy paid plans.")
                return redirect(_next_url(request) or "payments:index")
        else:
            status = 400
    context = {
        "section": "payments",
        "form": form,
        "gateway": gateway,
        "cards": selectors.card_list(user=request.user),
        "has_valid_card": selectors.user_has_valid_card(user=request.user),
        "invoices": selectors.invoice_list(user=request.user)[:5],
        "earnings": selectors.earnings_totals(user=request.user),
        "next": _next_url(request),
        "currency": settings.PLANQK_CURRENCY,
    }
    response = render(request, "payments/index.html", context, status=status)
    if gateway.uses_stripe_elements:
        # Stripe.js comes from Stripe and draws the card field in Stripe's frames (django-csp).
        response._csp_update = STRIPE_ELEMENTS_CSP
    return response


@login_required
@require_POST
def setup_intent(request: HttpRequest) -> JsonResponse:
    """Stripe Elements: a SetupIntent's client secret for the browser to confirm the card with."""
    try:
        intent = services.setup_intent_create(user=request.user)
    except ApplicationError as exc:
        return JsonResponse({"code": exc.code, "detail": exc.message}, status=exc.status)
    return JsonResponse({"id": intent.id, "client_secret": intent.client_secret})


@login_required
@require_POST
def card_from_setup_intent(request: HttpRequest) -> HttpResponse:
    """Stripe Elements: save the card of the SetupIntent the browser just confirmed."""
    try:
        card = services.card_add_setup_intent(user=request.user, setup_intent_id=request.POST.get("setup_intent", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("payments:index")
    messages.success(request, f"Card {card} added. You can create services and buy paid plans.")
    return redirect(_next_url(request) or "payments:index")


@login_required
@require_http_methods(["GET", "POST"])
def card_remove(request: HttpRequest, card_id: Any) -> HttpResponse:
    """Confirm, then remove a card."""
    card = selectors.card_list(user=request.user).filter(pk=card_id).first()
    if card is None:
        raise Http404("No such card.")
    if request.method == "POST":
        try:
            services.card_remove(user=request.user, card_id=card.pk)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Card {card} removed.")
        return redirect("payments:index")
    others = selectors.card_valid_list(user=request.user).exclude(pk=card.pk).exists()
    message = "The card is detached from your account at the payment provider."
    if not others:
        message += (
            " It is your only valid card: without one you cannot create services or subscribe to paid plans, "
            "and invoices of your paid subscriptions cannot be charged."
        )
    return render(
        request,
        "confirm.html",
        {
            "title": f"Remove card {card}?",
            "message": message,
            "confirm_label": "Remove card",
            "cancel_url": "payments:index",
        },
    )


@login_required
def invoices(request: HttpRequest) -> HttpResponse:
    """Every invoice of the user's subscriptions, newest period first."""
    page = Paginator(selectors.invoice_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "payments/invoices.html", {"section": "payments", "page_obj": page, "invoices": page})


@login_required
def invoice_detail(request: HttpRequest, invoice_id: Any) -> HttpResponse:
    invoice = selectors.invoice_get(user=request.user, invoice_id=invoice_id)
    if invoice is None:
        raise Http404("No such invoice.")
    is_subscriber = invoice.subscriber_id == request.user.pk
    return render(
        request,
        "payments/invoice_detail.html",
        {"section": "payments", "invoice": invoice, "is_subscriber": is_subscriber},
    )


@login_required
@require_POST
def invoice_pay(request: HttpRequest, invoice_id: Any) -> HttpResponse:
    """Charge a failed invoice again, with the current card."""
    try:
        invoice = services.invoice_pay_now(user=request.user, invoice_id=invoice_id)
    except ApplicationError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from exc
        messages.error(request, exc.message)
        return redirect("payments:invoice", invoice_id=invoice_id)
    if invoice.status == "PAID":
        messages.success(request, f"Invoice {invoice.number} is paid.")
    elif invoice.status == "PROCESSING":
        messages.info(request, f"Invoice {invoice.number} is being charged.")
    else:
        messages.error(request, f"Invoice {invoice.number} could not be charged: {invoice.failure_message}")
    return redirect("payments:invoice", invoice_id=invoice.pk)


def _period_links(start: Any) -> dict[str, str]:
    from datetime import timedelta

    previous = services.billing_period(start - timedelta(days=1))[0]
    following = services.billing_period(start + timedelta(days=32))[0]
    return {
        "period": f"{start:%Y-%m}",
        "previous_period": f"{previous:%Y-%m}",
        "next_period": f"{following:%Y-%m}" if following <= services.billing_period(timezone.now())[0] else "",
    }


def _day_chart(report: usage_reports.UsageReport) -> dict[str, Any]:
    from datetime import timedelta

    from .templatetags.money import money

    values = [
        (
            f"{day.day:%d}",
            day.cents,
            f"{day.day:%Y-%m-%d}: {day.executions} executions, {money(day.cents, report.currency)}",
        )
        for day in report.days
    ]
    # Every day of the month has its slot, so a bar's width does not depend on the date.
    current = report.days[-1].day + timedelta(days=1) if report.days else report.period_start.date()
    while current < report.period_end.date():
        values.append((f"{current:%d}", 0, f"{current:%Y-%m-%d}"))
        current += timedelta(days=1)
    return usage_reports.bar_chart(values)


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    """The subscriber's usage and cost this period: per application, subscription and day."""
    from .budgets import application_budget, budget_notice_list

    start = usage_reports.period_parse(request.GET.get("period"))
    report = usage_reports.usage_report(user=request.user, role=usage_reports.SUBSCRIBER, period_start=start)
    groups = report.groups("application")
    from applications.models import Application

    applications = Application.objects.in_bulk([group["id"] for group in groups])
    for group in groups:
        application = applications.get(group["id"])
        group["budget"] = application_budget(application=application) if application and report.is_open else None
    context = {
        "section": "payments",
        "report": report,
        "groups": groups,
        "chart": _day_chart(report),
        "notices": budget_notice_list(user=request.user) if report.is_open else [],
        **_period_links(report.period_start),
    }
    return render(request, "payments/usage.html", context)


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def usage_csv(request: HttpRequest) -> HttpResponse:
    start = usage_reports.period_parse(request.GET.get("period"))
    text = usage_reports.usage_csv(user=request.user, role=usage_reports.SUBSCRIBER, period_start=start)
    return _csv_response(text, f"usage-{start:%Y-%m}.csv")


@login_required
def earnings_csv(request: HttpRequest) -> HttpResponse:
    start = usage_reports.period_parse(request.GET.get("period"))
    text = usage_reports.usage_csv(user=request.user, role=usage_reports.PROVIDER, period_start=start)
    return _csv_response(text, f"earnings-{start:%Y-%m}.csv")


@login_required
def earnings(request: HttpRequest) -> HttpResponse:
    """What the user's services earn: this period per service and plan (from the usage records),
    the last months, and the invoices subscribers owe and paid."""
    from .templatetags.money import money

    start = usage_reports.period_parse(request.GET.get("period"))
    report = usage_reports.usage_report(user=request.user, role=usage_reports.PROVIDER, period_start=start)
    history = usage_reports.earnings_history(user=request.user, now=start)
    page = Paginator(selectors.earnings_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "payments/earnings.html",
        {
            "section": "payments",
            "report": report,
            "groups": report.groups("service"),
            "chart": _day_chart(report),
            "history_chart": usage_reports.bar_chart(
                [
                    (
                        f"{row['period_start']:%b}",
                        row["total_cents"],
                        f"{row['period_start']:%B %Y}: {money(row['total_cents'], report.currency)}",
                    )
                    for row in history
                ]
            ),
            "history": history,
            "page_obj": page,
            "invoices": page,
            "totals": selectors.earnings_totals(user=request.user),
            "currency": settings.PLANQK_CURRENCY,
            **_period_links(report.period_start),
        },
    )


@csrf_exempt  # Stripe cannot send our CSRF token; the signature is the check.
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's webhook: verified by signature, applied once per event id. Errors are JSON."""
    try:
        outcome = services.webhook_event_handle(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except ApplicationError as exc:
        return JsonResponse({"code": exc.code, "detail": exc.message}, status=exc.status)
    return JsonResponse({"received": True, "outcome": outcome})
