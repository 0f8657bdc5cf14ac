"""Who is calling: the OAuth2 access token → application → its active subscription, in one query.

The hot path (a subscribed application with a valid token) costs exactly one indexed query. Only
when that finds nothing do further queries work out which answer is right: 401 for the token,
404 for an unknown service, 403 for a missing subscription.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from applications.models import Subscription
from services.models import Lifecycle, Service

REALM = 'Bearer realm="gateway"'


class GatewayAuthError(Exception):
    """An authentication or authorisation failure with its HTTP answer."""

    def __init__(self, status: int, code: str, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge} if self.challenge else {}


@dataclass(frozen=True)
class Caller:
    """An authenticated call: the subscription holds the application and the service."""

    subscription: Subscription

    @property
    def application(self):  # noqa: ANN201 - the Application model; avoids an import cycle in annotations
        return self.subscription.application

    @property
    def service(self) -> Service:
        return self.subscription.service


def bearer_token(request: HttpRequest) -> str:
    """The bearer token of the request, or a 401 with the challenge the RFC 6750 client expects."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not header or scheme.lower() != "bearer":
        raise GatewayAuthError(
            401,
            "unauthorized",
            "Send an access token from the token endpoint: Authorization: Bearer <access_token>.",
            challenge=REALM,
        )
    if not token or len(token) > 512 or " " in token:
        raise GatewayAuthError(
            401,
            "invalid_token",
            "The access token is malformed.",
            challenge=f'{REALM}, error="invalid_token", error_description="The access token is malformed"',
        )
    return token


def _invalid_token() -> GatewayAuthError:
    return GatewayAuthError(
        401,
        "invalid_token",
        "The access token is invalid or expired; request a new one from the token endpoint.",
        challenge=f'{REALM}, error="invalid_token", error_description="The access token is invalid or expired"',
    )


def authenticate(request: HttpRequest, *, context_id: str, service_name: str) -> Caller:
    """The caller's active subscription to the service ``context_id/service_name``."""
    token = bearer_token(request)
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    try:
        owner_uuid = uuid.UUID(context_id)
    except ValueError:
        owner_uuid = None
    now = timezone.now()
    if owner_uuid is not None:
        subscription = (
            Subscription.objects.select_related("application", "service")
            .filter(
                application__oauth_application__accesstoken__token_checksum=checksum,
                application__oauth_application__accesstoken__expires__gt=now,
                application__deleted_at__isnull=True,
                service__owner__uuid=owner_uuid,
                service__name=service_name,
                ended_at__isnull=True,
            )
            .first()
        )
        if subscription is not None:
            _check_service_callable(subscription)
            return Caller(subscription=subscription)
    # Cold path: say precisely what is wrong.
    access_token = (
        get_access_token_model()
        .objects.filter(token_checksum=checksum)
        .values("expires", "application__platform_app__deleted_at", "application__platform_app__id")
        .first()
    )
    if (
        access_token is None
        or access_token["expires"] <= now
        or access_token["application__platform_app__id"] is None
        or access_token["application__platform_app__deleted_at"] is not None
    ):
        raise _invalid_token()
    if owner_uuid is None or not Service.objects.filter(owner__uuid=owner_uuid, name=service_name).exists():
        raise GatewayAuthError(404, "service:not-found", "No such service at this address.")
    raise GatewayAuthError(
        403,
        "subscription:required",
        "This application is not subscribed to this service: subscribe it on the Applications page first.",
    )


def _check_service_callable(subscription: Subscription) -> None:
    service = subscription.service
    if service.lifecycle == Lifecycle.PUBLISHED:
        return
    if service.lifecycle == Lifecycle.ACCESSIBLE and service.owner_id == subscription.application.owner_id:
        return
    raise GatewayAuthError(403, "service:not-published", "This service is not published for this application.")
