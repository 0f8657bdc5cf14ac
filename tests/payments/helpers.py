"""Rows the payments and marketplace tests need: published services, applications, subscriptions.

They are created directly (no build, no OAuth flow): these tests are about plans, cards and money.
"""

from __future__ import annotations

import uuid

from django.utils import timezone

from applications.models import Application, Subscription
from applications.services import subscription_terms
from services.models import BuildStatus, Lifecycle, PlanKind, PricingPlan, Service, ServiceVersion

SPEC = """openapi: 3.0.3
info:
  title: Sum service
  version: "1.0"
paths:
  /:
    post:
      summary: Start an execution
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: object}
                params: {type: object}
      responses:
        "201": {description: The job}
"""


def make_service(
    owner,
    name: str = "sum",
    *,
    title: str = "",
    description: str = "Sums numbers.",
    backend: str = "NONE",
    lifecycle: str = Lifecycle.PUBLISHED,
    version: str = "1.0.0",
    ready: bool = True,
    api_spec: str = SPEC,
) -> Service:
    service = Service.objects.create(
        owner=owner, name=name, title=title, description=description, quantum_backend=backend, lifecycle=lifecycle
    )
    sv = ServiceVersion.objects.create(
        service=service,
        version=version,
        status=BuildStatus.READY if ready else BuildStatus.BUILDING,
        api_spec=api_spec,
        build_ended_at=timezone.now() if ready else None,
    )
    if ready and lifecycle != Lifecycle.CREATED:
        service.published_version = sv
        service.save(update_fields=["published_version"])
    return service


def make_plan(service: Service, kind: str = PlanKind.FREE, price_cents: int = 0, name: str = "") -> PricingPlan:
    return PricingPlan.objects.create(
        service=service, name=name or kind.replace("_", " ").title(), kind=kind, price_cents=price_cents
    )


def make_application(owner, name: str = "my-app") -> Application:
    from oauth2_provider.models import get_application_model

    oauth = get_application_model().objects.create(
        name=name,
        user=owner,
        client_type="confidential",
        authorization_grant_type="client-credentials",
        client_id=uuid.uuid4().hex,
    )
    return Application.objects.create(owner=owner, name=name, oauth_application=oauth)


def make_subscription(application: Application, service: Service, plan: PricingPlan) -> Subscription:
    """A subscription with the plan's terms copied as the platform copies them (no card check)."""
    subscription = subscription_terms(application=application, service=service, plan=plan)
    subscription.save()
    return subscription
