"""Writes for applications (OAuth2 clients of the gateway) and their subscriptions; gateway URLs."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_access_token_model, get_application_model

from planqk_portal.errors import ApplicationError

# One implementation of the gateway addresses (docs/DEVELOPING.md names them here): the services app's.
from services.selectors import gateway_url, service_endpoint_url

from .models import Application, Subscription

if TYPE_CHECKING:
    from accounts.models import User
    from services.models import PricingPlan, Service

__all__ = [
    "IssuedCredentials",
    "application_create",
    "application_delete",
    "application_regenerate_secret",
    "budget_set",
    "gateway_url",
    "service_endpoint_url",
    "subscription_create",
    "subscription_end",
    "token_curl_command",
    "token_endpoint_url",
]

NAME_MAX = 100
DESCRIPTION_MAX = 2000


@dataclass(frozen=True)
class IssuedCredentials:
    """An application with its consumer secret in clear text: shown once, never stored."""

    application: Application
    secret: str

    @property
    def consumer_key(self) -> str:
        return self.application.consumer_key

    @property
    def basic_auth(self) -> str:
        """``base64(key:secret)`` for ``Authorization: Basic``."""
        return basic_auth_value(key=self.consumer_key, secret=self.secret)


def basic_auth_value(*, key: str, secret: str) -> str:
    return base64.b64encode(f"{key}:{secret}".encode()).decode()


# --- URLs ----------------------------------------------------------------------------------------


def token_endpoint_url(request: HttpRequest | None = None) -> str:
    return f"{gateway_url(request)}/token"


def token_curl_command(*, basic_auth: str, request: HttpRequest | None = None) -> str:
    """The token request as service-platform.md shows it, ready to paste into a shell."""
    return (
        f'curl -X POST {token_endpoint_url(request)} -d "grant_type=client_credentials" '
        f'-H "Authorization: Basic {basic_auth}"'
    )


# --- applications --------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the application a name.", code="application:name-required")
    if len(name) > NAME_MAX:
        raise ApplicationError(f"The name can be at most {NAME_MAX} characters.", code="application:name-too-long")
    return name


def application_create(*, owner: User, name: str, description: str = "") -> IssuedCredentials:
    """Create an application and its OAuth2 client; the consumer secret is returned once."""
    name = _clean_name(name)
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise ApplicationError(
            f"The description can be at most {DESCRIPTION_MAX} characters.", code="application:description-too-long"
        )
    if Application.objects.filter(owner=owner, name=name, deleted_at__isnull=True).exists():
        raise ApplicationError(
            f"You already have an application named “{name}”.", code="application:name-taken", status=409
        )
    oauth_model = get_application_model()
    secret = generate_client_secret()
    try:
        with transaction.atomic():
            oauth_app = oauth_model.objects.create(
                user=owner,
                name=name[:255],
                client_type=oauth_model.CLIENT_CONFIDENTIAL,
                authorization_grant_type=oauth_model.GRANT_CLIENT_CREDENTIALS,
                client_secret=secret,  # hashed on save (CLIENT_SECRET_HASHER)
                hash_client_secret=True,
                skip_authorization=True,
            )
            application = Application.objects.create(
                owner=owner, name=name, description=description, oauth_application=oauth_app
            )
    except IntegrityError:
        raise ApplicationError(
            f"You already have an application named “{name}”.", code="application:name-taken", status=409
        ) from None
    return IssuedCredentials(application=application, secret=secret)


def _revoke_tokens(application: Application) -> None:
    get_access_token_model().objects.filter(application_id=application.oauth_application_id).delete()


def application_regenerate_secret(*, application: Application) -> IssuedCredentials:
    """A new consumer secret (returned once); the old secret and every token issued with it stop working."""
    if application.deleted_at is not None:
        raise ApplicationError("This application was deleted.", code="application:not-found", status=404)
    secret = generate_client_secret()
    with transaction.atomic():
        oauth_app = application.oauth_application
        oauth_app.client_secret = secret
        oauth_app.save(update_fields=["client_secret", "updated"])
        _revoke_tokens(application)
    return IssuedCredentials(application=application, secret=secret)


def application_delete(*, application: Application) -> None:
    """Delete an application: credentials and tokens stop working, subscriptions end.

    The row stays (hidden), so the usage recorded against its subscriptions is still billed.
    Executions already running finish and are recorded.
    """
    if application.deleted_at is not None:
        return
    now = timezone.now()
    with transaction.atomic():
        application.subscriptions.filter(ended_at__isnull=True).update(ended_at=now)
        _revoke_tokens(application)
        oauth_app = application.oauth_application
        # An unknown random secret: the consumer key can never obtain a token again.
        oauth_app.client_secret = generate_client_secret()
        oauth_app.save(update_fields=["client_secret", "updated"])
        application.deleted_at = now
        application.save(update_fields=["deleted_at"])


def access_token_purge_expired(*, older_than_seconds: int = 3600, batch: int = 10_000) -> int:
    """Reaper check: delete access tokens that expired a while ago (every token request adds one)."""
    from datetime import timedelta

    model = get_access_token_model()
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(model.objects.filter(expires__lt=cutoff).values_list("pk", flat=True)[:batch])
    if not ids:
        return 0
    return model.objects.filter(pk__in=ids).delete()[0]


# --- subscriptions -------------------------------------------------------------------------------


def _user_has_valid_card(user: User) -> bool:
    # The payments capability provides this; until it exists nobody has a card on file.
    try:
        from payments.selectors import user_has_valid_card
    except ImportError:
        return False
    return bool(user_has_valid_card(user=user))


def subscription_terms(*, application: Application, service: Service, plan: PricingPlan) -> Subscription:
    """An unsaved subscription with the plan's terms copied (later plan changes do not touch it)."""
    return Subscription(
        application=application,
        service=service,
        plan=plan,
        plan_kind=plan.kind,
        price_cents=plan.price_cents,
        currency=plan.currency,
        requests_per_minute=plan.requests_per_minute,
        max_concurrent=plan.max_concurrent,
    )


def subscription_create(*, application: Application, service: Service, plan: PricingPlan) -> Subscription:
    """Subscribe ``application`` to ``service`` on ``plan`` (the plan's terms are copied).

    ACCESSIBLE services take only their owner's applications, PUBLISHED ones anyone's; a paid
    plan needs a valid card on the application owner's account.
    """
    from services.models import Lifecycle

    if application.deleted_at is not None:
        raise ApplicationError("This application was deleted.", code="application:not-found", status=404)
    owner = application.owner
    if service.deleted_at is not None:
        raise ApplicationError("No such service.", code="subscription:service-not-found", status=404)
    if service.lifecycle == Lifecycle.PUBLISHED:
        pass
    elif service.lifecycle == Lifecycle.ACCESSIBLE:
        if service.owner_id != owner.pk:
            raise ApplicationError(
                "This service is published for its owner's internal use only.",
                code="subscription:not-allowed",
                status=403,
            )
    else:
        # Not published: look like a missing service to anyone but its owner.
        if service.owner_id != owner.pk:
            raise ApplicationError("No such service.", code="subscription:service-not-found", status=404)
        raise ApplicationError(
            "Publish the service (for internal use or in the marketplace) before subscribing to it.",
            code="subscription:not-published",
        )
    if plan.service_id != service.pk:
        raise ApplicationError("That pricing plan belongs to another service.", code="subscription:plan-mismatch")
    if not plan.is_active:
        raise ApplicationError("That pricing plan is no longer offered.", code="subscription:plan-inactive")
    if plan.is_paid and not _user_has_valid_card(owner):
        raise ApplicationError(
            f"“{plan.name}” is a paid plan: add a valid card under Settings → Payments first.",
            code="subscription:card-required",
            status=402,
        )
    if Subscription.objects.filter(application=application, service=service, ended_at__isnull=True).exists():
        raise ApplicationError(
            f"“{application.name}” is already subscribed to “{service.display_name}”.",
            code="subscription:exists",
            status=409,
        )
    subscription = subscription_terms(application=application, service=service, plan=plan)
    try:
        with transaction.atomic():
            subscription.save()
    except IntegrityError:
        # Two requests raced past the check above; the database's constraint decided.
        raise ApplicationError(
            f"“{application.name}” is already subscribed to “{service.display_name}”.",
            code="subscription:exists",
            status=409,
        ) from None
    return subscription


def subscription_end(*, subscription: Subscription) -> Subscription:
    """Unsubscribe: calls stop being accepted at once; running executions finish and are recorded."""
    if subscription.ended_at is None:
        subscription.ended_at = timezone.now()
        Subscription.objects.filter(pk=subscription.pk, ended_at__isnull=True).update(ended_at=subscription.ended_at)
    return subscription


# --- budgets -------------------------------------------------------------------------------------


def budget_set(*, application: Application, budget_cents: int | None, subscription: Subscription | None = None) -> None:
    """Set (or with None remove) the monthly spending cap of an application or one of its subscriptions.

    Admission enforces it (``payments.budgets.budget_check``); lowering it below what is spent
    refuses further billable executions this month but never touches executions already admitted.
    """
    if budget_cents is not None and budget_cents < 0:
        raise ApplicationError("A budget cannot be negative.", code="budget:negative")
    if subscription is not None:
        if subscription.application_id != application.pk:
            raise ApplicationError("No such subscription.", code="subscription:not-found", status=404)
        Subscription.objects.filter(pk=subscription.pk).update(monthly_budget_cents=budget_cents)
        subscription.monthly_budget_cents = budget_cents
        return
    Application.objects.filter(pk=application.pk).update(monthly_budget_cents=budget_cents)
    application.monthly_budget_cents = budget_cents
