"""One row per worker host, kept fresh by its Celery workers (:mod:`hosts.worker`)."""

from __future__ import annotations

from django.db import models


class WorkerHost(models.Model):
    """A host (``PLANQK_HOST_NAME``) that runs workers; ``last_seen`` is its heartbeat."""

    name = models.CharField(max_length=100, unique=True)
    # The latest start of a worker on this host.
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    # The runtimes this host's workers are configured for (announced; routing is not built yet).
    runtimes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name
