"""Payments: customers and cards at the payment gateway, metered usage, invoices, webhook events."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class PaymentCustomer(models.Model):
    """The user's customer object at one gateway (simulator or Stripe)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_customers")
    gateway = models.CharField(max_length=16)
    customer_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "gateway"), name="payment_customer_unique_per_gateway"),
            models.UniqueConstraint(fields=("gateway", "customer_id"), name="payment_customer_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway}:{self.customer_id}"


class Card(models.Model):
    """A card saved at the gateway (a PaymentMethod); only brand, last four digits and expiry are kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cards")
    gateway = models.CharField(max_length=16)
    payment_method_id = models.CharField(max_length=255)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=("gateway", "payment_method_id"), name="card_payment_method_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"

    @property
    def is_expired(self) -> bool:
        # A card is valid through the last day of its expiry month.
        today = timezone.now().date()
        return (self.exp_year, self.exp_month) < (today.year, today.month)


class InvoiceStatus(models.TextChoices):
    OPEN = "OPEN", "Open"
    PROCESSING = "PROCESSING", "Charging"
    PAID = "PAID", "Paid"
    FAILED = "FAILED", "Payment failed"
    VOID = "VOID", "Nothing to charge"


class Invoice(models.Model):
    """What one subscription owes for one billing period; charged once with an idempotency key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=32, unique=True)
    # SET_NULL: accounting records outlive a deleted account.
    subscriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="invoices"
    )
    provider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="earnings"
    )
    # Names are copied: the invoice must still read right after an application or service is gone.
    subscription = models.ForeignKey(
        "applications.Subscription", on_delete=models.SET_NULL, null=True, related_name="invoices"
    )
    service = models.ForeignKey("services.Service", on_delete=models.SET_NULL, null=True, related_name="invoices")
    service_name = models.CharField(max_length=120)
    application_name = models.CharField(max_length=100)
    plan_name = models.CharField(max_length=60)
    plan_kind = models.CharField(max_length=16)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(help_text="Exclusive.")
    executions = models.PositiveIntegerField(default=0)
    amount_cents = models.PositiveBigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN)
    attempts = models.PositiveIntegerField(default=0, help_text="Charge attempts; part of the idempotency key.")
    gateway = models.CharField(max_length=16, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    # What the current attempt charges: a retried attempt must send the same parameters with its key.
    customer_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    charged_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-period_start", "-created_at")
        constraints = [
            # One invoice per subscription and period makes the billing run safe to repeat.
            models.UniqueConstraint(fields=("subscription", "period_start"), name="invoice_unique_per_period"),
        ]
        indexes = [
            models.Index(fields=("subscriber", "period_start")),
            models.Index(fields=("provider", "status")),
            models.Index(fields=("status",)),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def idempotency_key(self) -> str:
        """Same invoice and attempt, same key: a retried charge can never charge twice."""
        return f"invoice-{self.id}-attempt-{self.attempts}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1)
    unit_price_cents = models.PositiveBigIntegerField(default=0)
    amount_cents = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.description


class UsageRecord(models.Model):
    """One metered execution of a subscription, recorded when the job reaches a final state."""

    subscription = models.ForeignKey("applications.Subscription", on_delete=models.CASCADE, related_name="usage")
    job = models.OneToOneField("jobs.Job", on_delete=models.SET_NULL, null=True, related_name="usage_record")
    status = models.CharField(max_length=10)
    duration_ms = models.PositiveBigIntegerField(default=0)
    price_cents = models.PositiveIntegerField(default=0, help_text="The subscription's price at the time.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage")

    class Meta:
        ordering = ("-recorded_at",)
        indexes = [models.Index(fields=("subscription", "recorded_at"))]

    def __str__(self) -> str:
        return f"Usage of {self.subscription_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class BudgetNotice(models.Model):
    """A subscriber was told that an application or subscription reached a share of its monthly cap.

    One row per budget, period and threshold: the unique constraint makes the notice (and its
    e-mail) happen once, however many executions finish at the same time.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget_notices")
    application = models.ForeignKey("applications.Application", on_delete=models.CASCADE, related_name="budget_notices")
    # Empty: the application's own cap; else the subscription's.
    subscription = models.ForeignKey(
        "applications.Subscription", on_delete=models.CASCADE, null=True, blank=True, related_name="budget_notices"
    )
    period_start = models.DateTimeField()
    percent = models.PositiveSmallIntegerField()
    total_cents = models.PositiveBigIntegerField()
    cap_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("application", "period_start", "percent"),
                condition=models.Q(subscription__isnull=True),
                name="budget_notice_once_per_application",
            ),
            models.UniqueConstraint(
                fields=("subscription", "period_start", "percent"),
                condition=models.Q(subscription__isnull=False),
                name="budget_notice_once_per_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.percent} % of {self.cap_cents} at {self.period_start:%Y-%m}"


class WebhookEvent(models.Model):
    """A gateway event already handled; its id makes a replayed delivery a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class SimulatorCharge(models.Model):
    """The simulator's memory of charges by idempotency key, as Stripe keeps it for 24 hours."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    payment_intent_id = models.CharField(max_length=64, unique=True)
    customer_id = models.CharField(max_length=255)
    payment_method_id = models.CharField(max_length=255)
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    succeeded = models.BooleanField()
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.payment_intent_id
