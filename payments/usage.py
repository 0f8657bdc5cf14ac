"""Usage and earnings: what executions cost, read from the usage records (the invoices' source).

One rule for a period's money, shared with ``invoice_create``: per-execution plans cost the
prices of the period's usage records; a monthly plan costs its flat price for every month the
subscription was active in. The subscriber's usage page, the provider's earnings page, the CSV
files and the REST API all come from :func:`usage_report`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import UsageRecord
from .services import billing_period

SUBSCRIBER = "subscriber"
PROVIDER = "provider"


@dataclass
class UsageLine:
    """One subscription in one period."""

    subscription_id: Any
    application_id: Any
    application_name: str
    service_id: Any
    service_name: str
    plan_name: str
    plan_kind: str
    unit_price_cents: int
    executions: int = 0
    billable: int = 0
    duration_ms: int = 0
    usage_cents: int = 0
    flat_cents: int = 0

    @property
    def total_cents(self) -> int:
        return self.usage_cents + self.flat_cents

    @property
    def run_seconds(self) -> float:
        return self.duration_ms / 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": str(self.subscription_id),
            "application_id": str(self.application_id),
            "application_name": self.application_name,
            "service_id": str(self.service_id),
            "service_name": self.service_name,
            "plan_name": self.plan_name,
            "plan_kind": self.plan_kind,
            "unit_price_cents": self.unit_price_cents,
            "executions": self.executions,
            "billable_executions": self.billable,
            "run_seconds": round(self.run_seconds, 3),
            "usage_cents": self.usage_cents,
            "flat_cents": self.flat_cents,
            "total_cents": self.total_cents,
        }


@dataclass
class UsageDay:
    day: date
    executions: int = 0
    duration_ms: int = 0
    cents: int = 0


@dataclass
class UsageReport:
    role: str
    period_start: datetime
    period_end: datetime
    currency: str
    lines: list[UsageLine] = field(default_factory=list)
    days: list[UsageDay] = field(default_factory=list)

    @property
    def executions(self) -> int:
        return sum(line.executions for line in self.lines)

    @property
    def duration_ms(self) -> int:
        return sum(line.duration_ms for line in self.lines)

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def run_seconds(self) -> float:
        return self.duration_ms / 1000

    @property
    def is_open(self) -> bool:
        return self.period_end > timezone.now()

    def groups(self, key: str) -> list[dict[str, Any]]:
        """Lines grouped by ``application`` (subscriber) or ``service`` (provider), with sums."""
        out: dict[Any, dict[str, Any]] = {}
        for line in self.lines:
            ident = line.application_id if key == "application" else line.service_id
            name = line.application_name if key == "application" else line.service_name
            group = out.setdefault(ident, {"id": ident, "name": name, "lines": [], "executions": 0, "total_cents": 0})
            group["lines"].append(line)
            group["executions"] += line.executions
            group["total_cents"] += line.total_cents
        return sorted(out.values(), key=lambda g: (-g["total_cents"], g["name"]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "currency": self.currency,
            "executions": self.executions,
            "run_seconds": round(self.duration_ms / 1000, 3),
            "total_cents": self.total_cents,
            "subscriptions": [line.as_dict() for line in self.lines],
            "days": [
                {
                    "day": day.day.isoformat(),
                    "executions": day.executions,
                    "run_seconds": round(day.duration_ms / 1000, 3),
                    "cents": day.cents,
                }
                for day in self.days
            ],
        }


def period_parse(value: str | None, *, now: datetime | None = None) -> datetime:
    """``YYYY-MM`` as the start of that billing period; the current one when empty or unreadable."""
    if value:
        try:
            moment = datetime.strptime(value.strip(), "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            moment = None
        if moment is not None and 2000 <= moment.year <= 2200:
            return billing_period(moment)[0]
    return billing_period(now or timezone.now())[0]


def _scope(role: str, user: Any) -> Q:
    if role == SUBSCRIBER:
        return Q(subscription__application__owner=user)
    return Q(subscription__service__owner=user)


def _monthly_active(role: str, user: Any, start: datetime, end: datetime) -> Iterable[Any]:
    """Monthly subscriptions active in [start, end): each owes its flat price for the month (as invoices)."""
    from applications.models import Subscription

    scope = Q(application__owner=user) if role == SUBSCRIBER else Q(service__owner=user)
    return (
        Subscription.objects.filter(scope, plan_kind="MONTHLY", price_cents__gt=0, created_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
        .select_related("application", "service", "plan")
    )


def _line(subscription: Any) -> UsageLine:
    application = subscription.application
    return UsageLine(
        subscription_id=subscription.pk,
        application_id=application.pk,
        application_name=application.name + (" (deleted)" if application.deleted_at else ""),
        service_id=subscription.service_id,
        service_name=subscription.service.display_name,
        plan_name=subscription.plan.name,
        plan_kind=subscription.plan_kind,
        unit_price_cents=subscription.price_cents,
    )


def usage_report(*, user: Any, role: str = SUBSCRIBER, period_start: datetime | None = None) -> UsageReport:
    """The period's usage of ``user``'s applications (``subscriber``) or of their services (``provider``)."""
    from applications.models import Subscription

    start, end = billing_period(period_start or timezone.now())
    records = UsageRecord.objects.filter(_scope(role, user), recorded_at__gte=start, recorded_at__lt=end)
    per_subscription = records.values("subscription_id").annotate(
        n=Count("id"),
        billable=Count("id", filter=Q(price_cents__gt=0)),
        ms=Sum("duration_ms"),
        cents=Sum("price_cents"),
    )
    lines: dict[Any, UsageLine] = {}
    sums = {row["subscription_id"]: row for row in per_subscription}
    for subscription in Subscription.objects.filter(pk__in=list(sums)).select_related("application", "service", "plan"):
        row = sums[subscription.pk]
        line = _line(subscription)
        line.executions, line.billable = row["n"], row["billable"]
        line.duration_ms, line.usage_cents = int(row["ms"] or 0), int(row["cents"] or 0)
        lines[subscription.pk] = line
    for subscription in _monthly_active(role, user, start, end):
        line = lines.setdefault(subscription.pk, _line(subscription))
        line.flat_cents = subscription.price_cents

    by_day = {
        row["day"]: row
        for row in records.annotate(day=TruncDate("recorded_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("id"), ms=Sum("duration_ms"), cents=Sum("price_cents"))
    }
    days = []
    now = timezone.now()
    final = (min(end, now) - timedelta(microseconds=1)).date() if start < now else start.date()
    current = start.date()
    while current <= final:
        row = by_day.get(current, {})
        days.append(
            UsageDay(
                day=current,
                executions=int(row.get("n") or 0),
                duration_ms=int(row.get("ms") or 0),
                cents=int(row.get("cents") or 0),
            )
        )
        current += timedelta(days=1)
    ordered = sorted(lines.values(), key=lambda x: (x.application_name, x.service_name, x.plan_name))
    return UsageReport(
        role=role,
        period_start=start,
        period_end=end,
        currency=settings.PLANQK_CURRENCY,
        lines=ordered,
        days=days,
    )


def earnings_history(*, user: Any, months: int = 6, now: datetime | None = None) -> list[dict[str, Any]]:
    """The provider's totals for the last ``months`` periods, oldest first (for the earnings chart)."""
    start, _ = billing_period(now or timezone.now())
    starts = [start]
    for _ in range(months - 1):
        starts.insert(0, billing_period(starts[0] - timedelta(days=1))[0])
    out = []
    for period in starts:
        report = usage_report(user=user, role=PROVIDER, period_start=period)
        out.append({"period_start": period, "executions": report.executions, "total_cents": report.total_cents})
    return out


def usage_csv(*, user: Any, role: str, period_start: datetime) -> str:
    """Every metered execution of the period and every monthly flat price, one row each."""
    start, end = billing_period(period_start)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "recorded_at_utc",
            "application",
            "service",
            "plan",
            "plan_kind",
            "job_id",
            "status",
            "run_seconds",
            "price_cents",
            "currency",
        ]
    )
    records = (
        UsageRecord.objects.filter(_scope(role, user), recorded_at__gte=start, recorded_at__lt=end)
        .select_related("subscription__application", "subscription__service", "subscription__plan")
        .order_by("recorded_at", "pk")
    )
    for record in records.iterator():
        subscription = record.subscription
        writer.writerow(
            [
                record.recorded_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                _safe(subscription.application.name),
                _safe(subscription.service.display_name),
                _safe(subscription.plan.name),
                subscription.plan_kind,
                str(record.job_id or ""),
                record.status,
                f"{record.duration_ms / 1000:.3f}",
                record.price_cents,
                subscription.currency.upper(),
            ]
        )
    for subscription in _monthly_active(role, user, start, end):
        writer.writerow(
            [
                start.strftime("%Y-%m-%d %H:%M:%S"),
                _safe(subscription.application.name),
                _safe(subscription.service.display_name),
                _safe(subscription.plan.name),
                subscription.plan_kind,
                "",
                "MONTHLY_FLAT_PRICE",
                "",
                subscription.price_cents,
                subscription.currency.upper(),
            ]
        )
    return out.getvalue()


def _safe(text: str) -> str:
    """Names are user input: a leading = + - @ would be a formula in a spreadsheet."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def bar_chart(values: list[tuple[str, int, str]], *, width: int = 600, height: int = 120) -> dict[str, Any]:
    """Bars for an SVG drawn by the template (no script, no inline style): ``(label, value, title)``."""
    top = max((value for _, value, _ in values), default=0) or 1
    count = max(len(values), 1)
    step = width / count
    bars = []
    for index, (label, value, title) in enumerate(values):
        h = round(value / top * (height - 4), 1) if value else 0
        bars.append(
            {
                "x": round(index * step + step * 0.1, 1),
                "y": round(height - h, 1),
                "width": round(step * 0.8, 1),
                "height": h,
                "label": label,
                "title": title,
                "value": value,
            }
        )
    return {"width": width, "height": height, "bars": bars, "empty": top == 1 and not any(v for _, v, _ in values)}
