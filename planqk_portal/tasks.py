from celery import shared_task

from . import reaper


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def reap() -> dict[str, str]:
    """Periodic: run every registered reaper check."""
    return reaper.run_all()
