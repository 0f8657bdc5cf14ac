"""Create Job offers exactly the services admission lets the user run.

``jobs.admission.runnable_services`` is the query form of the admission check (``_subscription_of``
then ``_check_callable``): two forms of one rule. This test walks every combination of who owns
the service, its lifecycle, whether it is deleted, and the state of the user's subscription, and
asserts that the query and the check agree on each, so a change to one without the other fails here.
"""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from jobs.admission import _check_callable, _subscription_of, runnable_services
from planqk_portal.errors import ApplicationError
from tests.applications.conftest import make_app, make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

OWNERS = ("self", "other")
LIFECYCLES = ("CREATED", "ACCESSIBLE", "PUBLISHED")
DELETED = (False, True)
# The user's subscription to the service: none, active, ended, through a deleted application,
# and an active one of another user's application (which is not the user's).
SUBSCRIPTIONS = ("none", "active", "ended", "app-deleted", "someone-elses")


def _admits(user, service, version) -> bool:
    """What admission decides for a run without a gateway subscription (Create Job, REST)."""
    subscription = None
    if service.owner_id != user.pk:
        subscription = _subscription_of(user=user, service=service)
        if subscription is None:
            return False
    application = subscription.application if subscription is not None else None
    try:
        _check_callable(service_version=version, user=user, application=application)
    except ApplicationError:
        return False
    return True


def test_the_query_and_the_check_agree_on_every_combination():
    from applications.models import Subscription

    user, other, third = make_user("u@example.com"), make_user("o@example.com"), make_user("t@example.com")
    cases = []
    for n, (owner, lifecycle, deleted, sub) in enumerate(itertools.product(OWNERS, LIFECYCLES, DELETED, SUBSCRIPTIONS)):
        target = make_service(
            user if owner == "self" else other,
            name=f"s{n}",
            lifecycle=lifecycle,
            external_url=f"https://q{n}.example.org/",
        )
        if sub != "none":
            app = make_app(third if sub == "someone-elses" else user, name=f"a{n}")
            # Made directly: a subscription outlives its service going back to CREATED or
            # ACCESSIBLE, which subscription_create would refuse to start with.
            subscription = Subscription.objects.create(
                application=app.application, service=target.service, plan=target.plan, plan_kind="FREE", price_cents=0
            )
            if sub == "ended":
                subscription.ended_at = timezone.now()
                subscription.save(update_fields=["ended_at"])
            if sub == "app-deleted":
                app.application.deleted_at = timezone.now()
                app.application.save(update_fields=["deleted_at"])
        if deleted:
            target.service.deleted_at = timezone.now()
            target.service.save(update_fields=["deleted_at"])
        cases.append(((owner, lifecycle, deleted, sub), target))

    offered = set(runnable_services(user=user).values_list("pk", flat=True))
    disagree = [
        case
        for case, target in cases
        if (target.service.pk in offered) != _admits(user, target.service, target.version)
    ]
    assert disagree == []
    # Not vacuous: both answers occur (own services, a subscribed published one; the rest refused).
    admitted = {case for case, target in cases if _admits(user, target.service, target.version)}
    assert ("other", "PUBLISHED", False, "active") in admitted
    assert ("self", "CREATED", False, "none") in admitted
    assert ("other", "ACCESSIBLE", False, "active") not in admitted
    assert ("other", "PUBLISHED", False, "ended") not in admitted
