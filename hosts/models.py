"""One row per worker host, kept fresh by its Celery workers (:mod:`hosts.worker`)."""

from __future__ import annotations

from django.db import models


class WorkerHost(models.Model):
    """A host (``PLANQK_HOST_NAME``) that runs workers; ``last_seen`` is its heartbeat."""

    name = models.CharField(max_length=100, unique=True)
    # The latest start of a worker on this host.
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    # What the host's workers announce (PLANQK_HOST_RUNTIMES, PLANQK_WORKER_QUEUES and the worker's
    # concurrency): hosts.selectors tells from it whether a live host can take a job at all.
    runtimes = models.JSONField(default=list, blank=True)
    queues = models.JSONField(default=list, blank=True, help_text="Pinned queues its workers consume.")
    capacity = models.PositiveIntegerField(default=0, help_text="Executions its worker runs at once.")

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name
