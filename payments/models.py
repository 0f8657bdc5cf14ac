"""Payments: metered usage (more models arrive with the payments capability)."""

from __future__ import annotations

from django.db import models


class UsageRecord(models.Model):
    """One metered execution of a subscription, recorded when the job reaches a final state."""

    subscription = models.ForeignKey("applications.Subscription", on_delete=models.CASCADE, related_name="usage")
    job = models.OneToOneField("jobs.Job", on_delete=models.SET_NULL, null=True, related_name="usage_record")
    status = models.CharField(max_length=10)
    duration_ms = models.PositiveBigIntegerField(default=0)
    price_cents = models.PositiveIntegerField(default=0, help_text="The subscription's price at the time.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-recorded_at",)
        indexes = [models.Index(fields=("subscription", "recorded_at"))]

    def __str__(self) -> str:
        return f"Usage of {self.subscription_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"
