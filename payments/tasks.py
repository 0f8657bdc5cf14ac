"""Payment tasks: thin entry points that call services."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def run_billing() -> dict[str, int]:
    """Periodic (CELERY_BEAT_SCHEDULE): invoice closed billing periods and charge open invoices."""
    return services.billing_run()


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def retry_failed_invoices(user_id: int) -> int:
    """Charge a user's failed invoices again, after a card was added."""
    return services.invoice_retry_failed(user_id=user_id)
