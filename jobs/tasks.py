"""Celery entry points for jobs: thin, by id; the work is in :mod:`jobs.engine`."""

from __future__ import annotations

from celery import shared_task

from . import engine


@shared_task(bind=True, acks_late=True, ignore_result=True)
def execute_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery binds the task itself
    """Run one job; a redelivered or duplicate task finds nothing to claim and returns."""
    return engine.execute_job(job_id)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=300, time_limit=360)
def reap_jobs() -> dict[str, int]:
    """The jobs part of the periodic reaper, on its own (for operators and tests)."""
    return engine.job_reap()
