"""Applications (OAuth2 clients of the gateway) and their subscriptions to services."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Application(models.Model):
    """A subscriber's application: consumer key = the OAuth2 client id; the secret is hashed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="applications")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    oauth_application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.PROTECT, related_name="platform_app"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    monthly_budget_cents = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Spending cap per calendar month (UTC) over all of the application's subscriptions; empty: none.",
    )
    # Deleting keeps the row (and so its subscriptions' usage records for billing): the credentials
    # stop working at once and the application disappears from every list.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("owner", "name"),
                condition=models.Q(deleted_at__isnull=True),
                name="application_name_unique_per_owner",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def consumer_key(self) -> str:
        return self.oauth_application.client_id


class Subscription(models.Model):
    """An application's subscription to a service, with the plan's terms copied at subscribe time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="subscriptions")
    service = models.ForeignKey("services.Service", on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey("services.PricingPlan", on_delete=models.PROTECT, related_name="subscriptions")
    plan_kind = models.CharField(max_length=16)
    price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="eur")
    requests_per_minute = models.PositiveIntegerField(default=120)
    max_concurrent = models.PositiveIntegerField(default=5)
    monthly_budget_cents = models.PositiveIntegerField(
        null=True, blank=True, help_text="Spending cap per calendar month (UTC) of this subscription; empty: none."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("application", "service"),
                condition=models.Q(ended_at__isnull=True),
                name="one_active_subscription_per_service",
            )
        ]
        indexes = [models.Index(fields=("application", "service"))]

    def __str__(self) -> str:
        return f"{self.application} → {self.service}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None
