"""Demo content for ``manage.py seed_demo``: an application of the demo account, subscribed to the demo sum service."""

from __future__ import annotations

from typing import Any, TextIO

from planqk_portal.errors import ApplicationError
from services.selectors import service_version_latest_callable

from . import services
from .models import Application, Subscription

DEMO_APPLICATION = "Demo application"


def _demo_sum_service(user: Any) -> Any:
    from services.models import Service

    return Service.objects.filter(owner=user, name="sum", deleted_at__isnull=True).first()


def seed_demo(user: Any, stdout: TextIO) -> None:
    """Create the demo application once (its secret is printed that one time) and subscribe it to ``sum``."""
    application = Application.objects.filter(owner=user, name=DEMO_APPLICATION, deleted_at__isnull=True).first()
    if application is None:
        issued = services.application_create(
            owner=user, name=DEMO_APPLICATION, description="Created by seed_demo to try the service API."
        )
        application = issued.application
        stdout.write(
            f"Demo application: consumer key {issued.consumer_key}\n"
            f"  consumer secret (shown only now; regenerate it on the Applications page if lost): {issued.secret}\n"
            f"  token: {services.token_curl_command(basic_auth=issued.basic_auth)}\n"
        )
    service = _demo_sum_service(user)
    if service is None:
        stdout.write("Demo application: no demo sum service to subscribe to\n")
        return
    if Subscription.objects.filter(application=application, service=service, ended_at__isnull=True).exists():
        return
    plan = service.plans.filter(is_active=True, kind="FREE").first()
    if plan is None:
        stdout.write("Demo application: the demo sum service has no free plan; not subscribed\n")
        return
    try:
        services.subscription_create(application=application, service=service, plan=plan)
    except ApplicationError as exc:
        if exc.code != "subscription:not-published":
            raise
        # The service is published for internal use as soon as its build is READY (services.demo);
        # the subscription is made now so the demo works from that moment without another step.
        services.subscription_terms(application=application, service=service, plan=plan).save()
    version = service_version_latest_callable(service=service)
    where = (
        services.service_endpoint_url(service=service, version=version)
        if version
        else "the endpoint appears on the Applications page once the build is ready"
    )
    stdout.write(f"Demo application: subscribed to sum ({where})\n")
