"""Writes for payments: cards at the gateway, billing periods, invoices, charges and webhooks."""

from __future__ import annotations

import calendar
import logging
import secrets
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.models import User
from applications.models import Subscription
from planqk_portal.errors import ApplicationError
from services.models import PlanKind

from . import selectors
from .gateways import CardDetails, GatewayUnavailable, PaymentGateway, SetupIntentInfo, get_gateway
from .models import Card, Invoice, InvoiceLine, InvoiceStatus, PaymentCustomer, UsageRecord, WebhookEvent

logger = logging.getLogger(__name__)

MAX_CARDS_PER_USER = 5
#: A period is billed only this long after it ended, so usage recorded at its last second is in.
BILLING_GRACE = timedelta(hours=1)
#: An attempt still "charging" after this long is retried with the same idempotency key.
STALE_CHARGE_AFTER = timedelta(minutes=15)
NO_CARD_MESSAGE = "No valid card to charge. Add a card in Settings → Payments; the invoice is charged again then."


# --- customers and cards ---------------------------------------------------------------------


def payment_customer_get_or_create(*, user: User, gateway: PaymentGateway | None = None) -> PaymentCustomer:
    """The user's customer at the configured gateway, created there on first use."""
    gateway = gateway or get_gateway()
    customer = PaymentCustomer.objects.filter(user=user, gateway=gateway.name).first()
    if customer is not None:
        return customer
    # The gateway call is idempotent per user, so a lost race creates no second remote customer.
    customer_id = gateway.customer_create(email=user.email, reference=str(user.uuid))
    try:
        with transaction.atomic():
            return PaymentCustomer.objects.create(user=user, gateway=gateway.name, customer_id=customer_id)
    except IntegrityError:
        return PaymentCustomer.objects.get(user=user, gateway=gateway.name)


def _check_card_limit(user: User) -> None:
    if selectors.card_list(user=user).count() >= MAX_CARDS_PER_USER:
        raise ApplicationError(
            f"You can keep at most {MAX_CARDS_PER_USER} cards. Remove one before adding another.",
            code="card:too-many",
            status=409,
        )


def _card_save(*, user: User, gateway: PaymentGateway, details: CardDetails) -> Card:
    with transaction.atomic():
        card, _ = Card.objects.get_or_create(
            gateway=gateway.name,
            payment_method_id=details.payment_method_id,
            defaults={
                "user": user,
                "brand": details.brand,
                "last4": details.last4,
                "exp_month": details.exp_month,
                "exp_year": details.exp_year,
            },
        )
        if card.user_id != user.pk:
            raise ApplicationError("This card is saved by another account.", code="card:taken", status=409)
        if card.is_expired:
            card.delete()
            raise ApplicationError("Your card has expired.", code="card:expired_card", status=402)
        # Invoices that failed for want of a card are charged again now that there is one.
        user_id = user.pk
        transaction.on_commit(lambda: _enqueue_retry(user_id))
    return card


def _enqueue_retry(user_id: int) -> None:
    from .tasks import retry_failed_invoices

    if Invoice.objects.filter(subscriber_id=user_id, status=InvoiceStatus.FAILED).exists():
        retry_failed_invoices.delay(user_id)


def card_add_payment_method(*, user: User, payment_method_id: str) -> Card:
    """Save a card from a gateway PaymentMethod id (Stripe.js, or Stripe's test ids like ``pm_card_visa``)."""
    payment_method_id = (payment_method_id or "").strip()
    if not payment_method_id or len(payment_method_id) > 255:
        raise ApplicationError("Give a PaymentMethod id.", code="card:payment-method-required")
    _check_card_limit(user)
    gateway = get_gateway()
    customer = payment_customer_get_or_create(user=user, gateway=gateway)
    details = gateway.card_attach(customer_id=customer.customer_id, payment_method_id=payment_method_id)
    return _card_save(user=user, gateway=gateway, details=details)


def card_add_number(*, user: User, number: str, exp_month: int, exp_year: int, cvc: str) -> Card:
    """Save a card typed into our own card form (the simulator; Stripe refuses raw numbers)."""
    _check_card_limit(user)
    gateway = get_gateway()
    payment_method_id = gateway.payment_method_create(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    customer = payment_customer_get_or_create(user=user, gateway=gateway)
    details = gateway.card_attach(customer_id=customer.customer_id, payment_method_id=payment_method_id)
    return _card_save(user=user, gateway=gateway, details=details)


def card_add_setup_intent(*, user: User, setup_intent_id: str) -> Card:
    """Save the card of a SetupIntent the browser confirmed with Stripe Elements."""
    setup_intent_id = (setup_intent_id or "").strip()
    if not setup_intent_id.startswith("seti_") or len(setup_intent_id) > 255:
        raise ApplicationError("Give the id of a confirmed SetupIntent (seti_…).", code="card:setup-intent-required")
    _check_card_limit(user)
    gateway = get_gateway()
    customer = payment_customer_get_or_create(user=user, gateway=gateway)
    details = gateway.card_from_setup_intent(customer_id=customer.customer_id, setup_intent_id=setup_intent_id)
    return _card_save(user=user, gateway=gateway, details=details)


def setup_intent_create(*, user: User) -> SetupIntentInfo:
    """Start saving a card in Stripe Elements: the client secret goes to the browser."""
    _check_card_limit(user)
    gateway = get_gateway()
    customer = payment_customer_get_or_create(user=user, gateway=gateway)
    return gateway.setup_intent_create(customer_id=customer.customer_id)


def card_remove(*, user: User, card_id: object) -> None:
    """Detach the card at the gateway and forget it."""
    card = selectors.card_list(user=user).filter(pk=card_id).first()
    if card is None:
        raise ApplicationError("No such card.", code="card:not-found", status=404)
    get_gateway(card.gateway).card_detach(payment_method_id=card.payment_method_id)
    card.delete()


# --- billing periods and invoices --------------------------------------------------------------


def billing_period(moment: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) containing ``moment``: [start, end)."""
    moment = moment.astimezone(UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(start.year, start.month)[1]
    return start, start + timedelta(days=days)


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


def _invoice_number(period_start: datetime) -> str:
    return f"INV-{period_start:%Y%m}-{secrets.token_hex(4).upper()}"


def invoice_create(*, subscription: Subscription, period_start: datetime) -> Invoice | None:
    """Bill one closed period of one subscription (idempotent: an existing invoice is returned).

    Per-execution plans total exactly the usage records of the period, each at the price it was
    recorded with; monthly plans pay their flat price for every month they were active in.
    Returns None when there is nothing to bill.
    """
    start, end = billing_period(period_start)
    if end > timezone.now():
        raise ApplicationError("This billing period has not ended yet.", code="billing:period-open")
    existing = Invoice.objects.filter(subscription=subscription, period_start=start).first()
    if existing is not None:
        return existing
    service = subscription.service
    application = subscription.application
    try:
        with transaction.atomic():
            invoice = Invoice.objects.create(
                number=_invoice_number(start),
                subscriber=application.owner,
                provider=service.owner,
                subscription=subscription,
                service=service,
                service_name=service.display_name[:120],
                application_name=application.name[:100],
                plan_name=subscription.plan.name[:60],
                plan_kind=subscription.plan_kind,
                period_start=start,
                period_end=end,
                currency=subscription.currency,
            )
            records = UsageRecord.objects.filter(
                subscription=subscription, recorded_at__gte=start, recorded_at__lt=end, invoice__isnull=True
            )
            records.update(invoice=invoice)
            usage = invoice.usage.all()
            executions = usage.count()
            lines: list[InvoiceLine] = []
            if subscription.plan_kind == PlanKind.MONTHLY:
                lines.append(
                    InvoiceLine(
                        invoice=invoice,
                        description=f"Monthly flat price, {start:%B %Y}",
                        quantity=1,
                        unit_price_cents=subscription.price_cents,
                        amount_cents=subscription.price_cents,
                    )
                )
                if executions:
                    lines.append(InvoiceLine(invoice=invoice, description="Executions (included)", quantity=executions))
            else:
                by_price = usage.values("price_cents").annotate(n=Count("id")).order_by("price_cents")
                for row in by_price:
                    price = row["price_cents"]
                    label = f"Executions at {_money(price, subscription.currency)}" if price else "Executions (free)"
                    lines.append(
                        InvoiceLine(
                            invoice=invoice,
                            description=label,
                            quantity=row["n"],
                            unit_price_cents=price,
                            amount_cents=price * row["n"],
                        )
                    )
            InvoiceLine.objects.bulk_create(lines)
            amount = sum(line.amount_cents for line in lines)
            if not lines:
                # Nothing happened in the period: no invoice at all.
                transaction.set_rollback(True)
                return None
            invoice.executions = executions
            invoice.amount_cents = amount
            invoice.status = InvoiceStatus.OPEN if amount > 0 else InvoiceStatus.VOID
            invoice.save(update_fields=["executions", "amount_cents", "status"])
    except IntegrityError:
        # Another billing run created it first.
        return Invoice.objects.get(subscription=subscription, period_start=start)
    return invoice


def _months(first: datetime, stop: datetime) -> list[datetime]:
    """Period starts from the month of ``first`` up to (excluding) the period starting at ``stop``."""
    out = []
    current, _ = billing_period(first)
    while current < stop:
        out.append(current)
        current = billing_period(current + timedelta(days=32))[0]
    return out


def billing_run(*, now: datetime | None = None, charge: bool = True) -> dict[str, int]:
    """Invoice every closed billing period not yet invoiced, then charge what is open.

    Safe to run any number of times and from several workers: one invoice per subscription and
    period (a unique constraint), one charge per invoice attempt (an idempotency key).
    """
    now = now or timezone.now()
    closed_before, _ = billing_period(now - BILLING_GRACE)
    created = 0
    periods: dict[Any, set[datetime]] = defaultdict(set)

    # Per-execution usage not yet invoiced, by subscription and month.
    unbilled = (
        UsageRecord.objects.filter(
            invoice__isnull=True,
            recorded_at__lt=closed_before,
            subscription__plan_kind=PlanKind.PER_EXECUTION,
        )
        .annotate(month=TruncMonth("recorded_at", tzinfo=UTC))
        .values_list("subscription_id", "month")
        .distinct()
    )
    for subscription_id, month in unbilled:
        periods[subscription_id].add(billing_period(month)[0])

    # Monthly flat plans: every month they were active in.
    monthly = Subscription.objects.filter(plan_kind=PlanKind.MONTHLY, price_cents__gt=0, created_at__lt=closed_before)
    for subscription in monthly.only("id", "created_at", "ended_at"):
        billed = set(Invoice.objects.filter(subscription=subscription).values_list("period_start", flat=True))
        last = min(closed_before, billing_period(subscription.ended_at)[1]) if subscription.ended_at else closed_before
        for start in _months(subscription.created_at, last):
            if start not in billed:
                periods[subscription.id].add(start)

    subscriptions = Subscription.objects.select_related("service", "application", "plan").in_bulk(list(periods))
    for subscription_id, starts in periods.items():
        subscription = subscriptions.get(subscription_id)
        if subscription is None:
            continue
        for start in sorted(starts):
            before = Invoice.objects.filter(subscription=subscription, period_start=start).exists()
            if invoice_create(subscription=subscription, period_start=start) is not None and not before:
                created += 1

    charged = failed = 0
    if charge:
        stale = now - STALE_CHARGE_AFTER
        due = Invoice.objects.filter(status=InvoiceStatus.OPEN) | Invoice.objects.filter(
            status=InvoiceStatus.PROCESSING, charged_at__lt=stale
        )
        for invoice_id in due.values_list("id", flat=True):
            invoice = invoice_charge(invoice_id=invoice_id)
            charged += invoice.status == InvoiceStatus.PAID
            failed += invoice.status == InvoiceStatus.FAILED
    return {"created": created, "paid": charged, "failed": failed}


def invoice_charge(*, invoice_id: object) -> Invoice:
    """Charge an open, failed or stalled invoice to the subscriber's card.

    A new attempt (new idempotency key) is started only after a definite failure; an attempt that
    may have reached the gateway is repeated with its own key and parameters, so it never charges
    twice.
    """
    gateway = get_gateway()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
            return invoice
        if invoice.amount_cents == 0:
            invoice.status = InvoiceStatus.VOID
            invoice.save(update_fields=["status"])
            return invoice
        resume = invoice.status == InvoiceStatus.PROCESSING and invoice.gateway == gateway.name
        if not resume:
            card = selectors.card_for_charging(user=invoice.subscriber) if invoice.subscriber else None
            customer = (
                PaymentCustomer.objects.filter(user=invoice.subscriber, gateway=gateway.name).first()
                if card is not None
                else None
            )
            if card is None or customer is None:
                invoice.status = InvoiceStatus.FAILED
                invoice.failure_message = NO_CARD_MESSAGE
                invoice.save(update_fields=["status", "failure_message"])
                return invoice
            invoice.attempts += 1
            invoice.gateway = gateway.name
            invoice.customer_id = customer.customer_id
            invoice.payment_method_id = card.payment_method_id
            invoice.payment_intent_id = ""
        invoice.status = InvoiceStatus.PROCESSING
        invoice.charged_at = timezone.now()
        invoice.save()
    try:
        result = gateway.charge(
            customer_id=invoice.customer_id,
            payment_method_id=invoice.payment_method_id,
            amount_cents=invoice.amount_cents,
            currency=invoice.currency,
            idempotency_key=invoice.idempotency_key,
            description=f"{invoice.number}: {invoice.service_name} ({invoice.period_start:%B %Y})",
            metadata={"invoice_id": str(invoice.id), "invoice_number": invoice.number},
        )
    except GatewayUnavailable as exc:
        # The charge may or may not have happened: stay PROCESSING, the next run asks again with this key.
        Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.PROCESSING).update(failure_message=exc.message[:500])
        invoice.refresh_from_db()
        return invoice
    except ApplicationError as exc:
        Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.PROCESSING).update(
            status=InvoiceStatus.FAILED, failure_message=exc.message[:500]
        )
        invoice.refresh_from_db()
        return invoice
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status == InvoiceStatus.PAID:
            return invoice  # a webhook was faster
        invoice.payment_intent_id = result.payment_intent_id or invoice.payment_intent_id
        if result.succeeded:
            invoice.status = InvoiceStatus.PAID
            invoice.paid_at = timezone.now()
            invoice.failure_message = ""
        elif not result.pending:
            invoice.status = InvoiceStatus.FAILED
            invoice.failure_message = (result.failure_message or "The payment did not go through.")[:500]
        invoice.save()
    return invoice


def invoice_pay_now(*, user: User, invoice_id: object) -> Invoice:
    """The subscriber retries a failed invoice (e.g. after adding a card)."""
    invoice = selectors.invoice_list(user=user).filter(pk=invoice_id).first()
    if invoice is None:
        raise ApplicationError("No such invoice.", code="invoice:not-found", status=404)
    if invoice.status not in (InvoiceStatus.FAILED, InvoiceStatus.OPEN):
        raise ApplicationError(
            f"This invoice is {invoice.get_status_display().lower()}; only unpaid invoices can be paid.",
            code="invoice:not-payable",
            status=409,
        )
    return invoice_charge(invoice_id=invoice.pk)


def invoice_retry_failed(*, user_id: int) -> int:
    """Charge the user's failed invoices again (after a card was added); returns how many got paid."""
    paid = 0
    for invoice_id in Invoice.objects.filter(subscriber_id=user_id, status=InvoiceStatus.FAILED).values_list(
        "id", flat=True
    ):
        paid += invoice_charge(invoice_id=invoice_id).status == InvoiceStatus.PAID
    return paid


def usage_summary(*, subscription: Subscription, since: datetime) -> dict[str, int]:
    """Executions and their price since a moment (for the current, not yet billed period)."""
    rows = UsageRecord.objects.filter(subscription=subscription, recorded_at__gte=since).aggregate(
        n=Count("id"), cents=Sum("price_cents")
    )
    return {"executions": int(rows["n"] or 0), "amount_cents": int(rows["cents"] or 0)}


# --- webhooks ----------------------------------------------------------------------------------


def webhook_event_handle(*, payload: bytes, signature: str) -> str:
    """Verify a Stripe webhook by its signature, apply it once (by event id) and say what it did."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise ApplicationError(
            "Webhooks are not configured on this platform (STRIPE_WEBHOOK_SECRET is empty).",
            code="webhook:not-configured",
            status=503,
        )
    if not signature:
        raise ApplicationError("The Stripe-Signature header is missing.", code="webhook:bad-signature", status=400)
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as exc:
        raise ApplicationError(
            "The signature does not match the payload.", code="webhook:bad-signature", status=400
        ) from exc
    except ValueError as exc:
        raise ApplicationError("The payload is not a JSON event.", code="webhook:bad-payload", status=400) from exc
    event_id = str(event.get("id") or "")
    event_type = str(event.get("type") or "")
    if not event_id or not event_type:
        raise ApplicationError("The event has no id or type.", code="webhook:bad-payload", status=400)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = WebhookEvent.objects.create(event_id=event_id[:255], type=event_type[:100])
        except IntegrityError:
            return "duplicate: already handled"
        obj = (event.get("data") or {}).get("object") or {}
        outcome = _apply_event(event_type, obj)
        record.outcome = outcome[:200]
        record.save(update_fields=["outcome"])
    return outcome


def _invoice_for_intent(obj: Any) -> Invoice | None:
    metadata = obj.get("metadata") or {}
    invoice_id = metadata.get("invoice_id")
    queryset = Invoice.objects.select_for_update()
    if invoice_id:
        try:
            return queryset.filter(pk=uuid.UUID(str(invoice_id))).first()
        except ValueError:
            return None
    intent_id = obj.get("id")
    return queryset.filter(payment_intent_id=intent_id).first() if intent_id else None


def _apply_event(event_type: str, obj: Any) -> str:
    if event_type == "payment_intent.succeeded":
        invoice = _invoice_for_intent(obj)
        if invoice is None:
            return "no matching invoice"
        if invoice.status == InvoiceStatus.PAID:
            return f"{invoice.number} already paid"
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = timezone.now()
        invoice.payment_intent_id = str(obj.get("id") or invoice.payment_intent_id)
        invoice.failure_message = ""
        invoice.save()
        return f"{invoice.number} paid"
    if event_type == "payment_intent.payment_failed":
        invoice = _invoice_for_intent(obj)
        if invoice is None:
            return "no matching invoice"
        if invoice.status == InvoiceStatus.PAID:
            return f"{invoice.number} already paid"
        # Only the attempt this event is about may be marked failed, not a newer one.
        if invoice.payment_intent_id and obj.get("id") and invoice.payment_intent_id != obj.get("id"):
            return f"{invoice.number}: event for an earlier attempt"
        error = obj.get("last_payment_error") or {}
        invoice.status = InvoiceStatus.FAILED
        invoice.failure_message = str(error.get("message") or "The payment did not go through.")[:500]
        invoice.save()
        return f"{invoice.number} failed"
    if event_type == "payment_method.detached":
        removed, _ = Card.objects.filter(gateway="stripe", payment_method_id=str(obj.get("id") or "")).delete()
        return f"{removed} card(s) removed"
    return "ignored"
