"""Monthly spending caps of applications and subscriptions: the admission check and the notices.

A cap counts what executions cost in the current billing period (the calendar month, UTC, as
invoices do): the usage records of the period plus the price of every billable execution that
is admitted but not final yet (it will be billed once it starts, so a burst cannot pass the
cap). A monthly plan's flat price is known when subscribing and is not counted. A cap of 0 lets
only free executions through; no cap (empty) means no limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from planqk_portal.errors import ApplicationError

from .models import BudgetNotice, UsageRecord
from .services import billing_period

logger = logging.getLogger(__name__)

PER_EXECUTION = "PER_EXECUTION"
#: Shares of a cap at which the subscriber is told (once per budget, period and share).
NOTICE_PERCENTS = (80, 100)


@dataclass(frozen=True)
class BudgetState:
    """One cap in one period: what is spent (final executions) and what is still running."""

    scope: str  # "application" | "subscription"
    cap_cents: int
    spent_cents: int
    running_cents: int
    currency: str
    period_start: datetime
    period_end: datetime

    @property
    def committed_cents(self) -> int:
        return self.spent_cents + self.running_cents

    @property
    def percent(self) -> int:
        if not self.cap_cents:
            return 100 if self.committed_cents else 0
        return min(999, self.committed_cents * 100 // self.cap_cents)


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


def _spent(*, start: datetime, end: datetime, **scope: Any) -> int:
    rows = UsageRecord.objects.filter(recorded_at__gte=start, recorded_at__lt=end, **scope).aggregate(
        cents=Sum("price_cents")
    )
    return int(rows["cents"] or 0)


def _running(**scope: Any) -> int:
    """The price of admitted, not yet final executions on per-execution plans."""
    from jobs.models import JOB_ACTIVE_STATES, Job

    rows = Job.objects.filter(status__in=JOB_ACTIVE_STATES, subscription__plan_kind=PER_EXECUTION, **scope).aggregate(
        cents=Sum("subscription__price_cents"), n=Count("id")
    )
    return int(rows["cents"] or 0)


def subscription_budget(*, subscription: Any, now: datetime | None = None) -> BudgetState | None:
    """The subscription's own cap this period, or None when it has none."""
    cap = type(subscription).objects.filter(pk=subscription.pk).values_list("monthly_budget_cents", flat=True).first()
    if cap is None:
        return None
    start, end = billing_period(now or timezone.now())
    return BudgetState(
        scope="subscription",
        cap_cents=cap,
        spent_cents=_spent(start=start, end=end, subscription_id=subscription.pk),
        running_cents=_running(subscription_id=subscription.pk),
        currency=subscription.currency or settings.PLANQK_CURRENCY,
        period_start=start,
        period_end=end,
    )


def application_budget(*, application: Any, now: datetime | None = None) -> BudgetState | None:
    """The application's cap over all its subscriptions this period, or None when it has none."""
    cap = type(application).objects.filter(pk=application.pk).values_list("monthly_budget_cents", flat=True).first()
    if cap is None:
        return None
    start, end = billing_period(now or timezone.now())
    return BudgetState(
        scope="application",
        cap_cents=cap,
        spent_cents=_spent(start=start, end=end, subscription__application_id=application.pk),
        running_cents=_running(subscription__application_id=application.pk),
        currency=settings.PLANQK_CURRENCY,
        period_start=start,
        period_end=end,
    )


def budget_check(*, subscription: Any, price_cents: int, now: datetime | None = None) -> None:
    """Raise 402 ``payments:budget-exceeded`` when one more execution at ``price_cents`` would pass a cap.

    Call inside the transaction that creates the job: the budget's row is locked first (the
    application's for its cap, else the subscription's), so simultaneous requests are counted
    one after the other.
    """
    from applications.models import Application, Subscription

    caps = (
        Subscription.objects.filter(pk=subscription.pk)
        .values_list("monthly_budget_cents", "application__monthly_budget_cents", "application_id", "currency")
        .first()
    )
    if caps is None:
        return
    subscription_cap, application_cap, application_id, currency = caps
    if subscription_cap is None and application_cap is None:
        return
    # The lock serialises admissions against this budget (a no-op on SQLite, whose writers queue).
    if application_cap is not None:
        list(Application.objects.select_for_update().filter(pk=application_id).values_list("pk", flat=True))
    if subscription_cap is not None:
        list(Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk", flat=True))
    application = Application(pk=application_id)
    states = [
        subscription_budget(subscription=subscription, now=now) if subscription_cap is not None else None,
        application_budget(application=application, now=now) if application_cap is not None else None,
    ]
    for state in states:
        if state is None or state.committed_cents + price_cents <= state.cap_cents:
            continue
        who = "this subscription" if state.scope == "subscription" else "this application"
        url = reverse("applications:detail", kwargs={"pk": application_id})
        raise ApplicationError(
            f"This execution would cost {_money(price_cents, currency)} and take {who} past its monthly budget of "
            f"{_money(state.cap_cents, currency)}: {_money(state.committed_cents, currency)} are spent or running "
            f"since {state.period_start:%Y-%m-%d}. Raise the budget on the application's page ({url}) or wait "
            f"for the next month ({state.period_end:%Y-%m-%d}).",
            code="payments:budget-exceeded",
            status=402,
            extra={
                "budget": state.scope,
                "budget_cents": state.cap_cents,
                "period_total_cents": state.committed_cents,
                "price_cents": price_cents,
                "currency": currency,
                "period_start": f"{state.period_start:%Y-%m-%d}",
                "budget_url": url,
            },
        )


# --- notices ------------------------------------------------------------------------------------


def _notify(*, state: BudgetState, application: Any, subscription: Any) -> BudgetNotice | None:
    """Write the notice for the highest share reached, once; mail the subscriber when it is new."""
    if state.cap_cents <= 0:
        return None
    reached = [p for p in NOTICE_PERCENTS if state.spent_cents * 100 >= state.cap_cents * p]
    if not reached:
        return None
    percent = reached[-1]
    try:
        with transaction.atomic():
            notice = BudgetNotice.objects.create(
                user_id=application.owner_id,
                application=application,
                subscription=subscription,
                period_start=state.period_start,
                percent=percent,
                total_cents=state.spent_cents,
                cap_cents=state.cap_cents,
                currency=state.currency,
            )
    except IntegrityError:
        return None  # told already (or a simultaneous finisher told)
    what = (
        f"the subscription of “{application.name}” to “{subscription.service.display_name}”"
        if subscription is not None
        else f"the application “{application.name}”"
    )
    subject = f"{percent} % of the monthly budget of {application.name} is spent"
    body = (
        f"Executions of {what} cost {_money(state.spent_cents, state.currency)} since "
        f"{state.period_start:%Y-%m-%d}, {percent} % of its monthly budget of "
        f"{_money(state.cap_cents, state.currency)}.\n\n"
        "Executions that would pass the budget are refused (HTTP 402 payments:budget-exceeded) until the next "
        "month or until you raise the budget on the application's page.\n"
    )
    owner = application.owner
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [owner.email])
    except Exception:
        logger.exception("budget notice %s: the e-mail to the subscriber failed", notice.pk)
    return notice


def budget_notices_check(*, subscription_id: Any, now: datetime | None = None) -> list[BudgetNotice]:
    """After an execution was metered: tell the subscriber about every cap that reached 80 % or 100 %."""
    from applications.models import Subscription

    subscription = Subscription.objects.select_related("application__owner", "service").filter(pk=subscription_id)
    subscription = subscription.first()
    if subscription is None:
        return []
    application = subscription.application
    notices = []
    if subscription.monthly_budget_cents is not None:
        state = subscription_budget(subscription=subscription, now=now)
        notices.append(_notify(state=state, application=application, subscription=subscription))
    if application.monthly_budget_cents is not None:
        state = application_budget(application=application, now=now)
        notices.append(_notify(state=state, application=application, subscription=None))
    return [notice for notice in notices if notice is not None]


def budget_notice_list(*, user: Any, now: datetime | None = None) -> list[BudgetNotice]:
    """The user's notices of the current period (shown on the usage and application pages)."""
    start, _ = billing_period(now or timezone.now())
    return list(
        BudgetNotice.objects.filter(user=user, period_start=start)
        .select_related("application", "subscription__service")
        .order_by("-percent", "-created_at")
    )
