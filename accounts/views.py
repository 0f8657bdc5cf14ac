"""Settings pages: personal access tokens and provider tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from planqk_portal.errors import ApplicationError

from . import selectors, services
from .forms import PersonalAccessTokenForm, ProviderTokenForm
from .models import PersonalAccessToken, Provider


@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    return redirect("accounts:tokens")


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List tokens and create one; the new token is shown once on this response only."""
    issued = None
    form = PersonalAccessTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.personal_access_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_days=form.cleaned_data["expires_days"],
            )
            form = PersonalAccessTokenForm()
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    context = {
        "form": form,
        "issued": issued,
        "tokens": selectors.personal_access_token_list(user=request.user),
        "section": "tokens",
    }
    return render(request, "accounts/tokens.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then revoke."""
    token = get_object_or_404(PersonalAccessToken, pk=pk, user=request.user)
    if request.method == "POST":
        services.personal_access_token_revoke(user=request.user, token_id=token.pk)
        messages.success(request, f"Token “{token.name}” revoked. It no longer works.")
        return redirect("accounts:tokens")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Revoke token “{token.name}”?",
            "message": "Anything using this token (the CLI, scripts) stops working at once.",
            "confirm_label": "Revoke token",
            "cancel_url": "accounts:tokens",
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def provider_tokens(request: HttpRequest) -> HttpResponse:
    """Show, replace and delete IBM and D-Wave tokens (always masked)."""
    form = ProviderTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.provider_token_set(
                user=request.user, provider=form.cleaned_data["provider"], value=form.cleaned_data["value"]
            )
            messages.success(request, f"{Provider(form.cleaned_data['provider']).label} token saved.")
            return redirect("accounts:providers")
        except ApplicationError as exc:
            form.add_error("value", exc.message)
    stored = {t.provider: t for t in selectors.provider_token_list(user=request.user)}
    rows = [{"provider": p, "token": stored.get(p.value)} for p in Provider]
    return render(request, "accounts/providers.html", {"rows": rows, "form": form, "section": "providers"})


@login_required
@require_POST
def provider_token_delete(request: HttpRequest, provider: str) -> HttpResponse:
    if provider not in Provider.values:
        messages.error(request, "Unknown provider.")
    else:
        services.provider_token_delete(user=request.user, provider=provider)
        messages.success(request, f"{Provider(provider).label} token deleted.")
    return redirect("accounts:providers")
