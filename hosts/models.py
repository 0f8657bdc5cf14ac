"""One row per worker host, kept fresh by its Celery workers (:mod:`hosts.worker`), and the
versions whose artefacts every host removes from its own disk and engine (:mod:`hosts.housekeeping`)."""

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
    # The queue family (PLANQK_QUEUE) its workers consume: a host of another family takes none of
    # this platform's queues, so routing and housekeeping do not count it as a host of theirs.
    queue_family = models.CharField(max_length=200, blank=True, default="")
    queues = models.JSONField(default=list, blank=True, help_text="Pinned queues its workers consume.")
    capacity = models.PositiveIntegerField(default=0, help_text="Executions its worker runs at once.")
    # The reaper's claim on this host's housekeeping: set when it sends the task to the host's
    # queue, cleared by that task when it ends (or void after HOUSEKEEPING_EXPIRES_SECONDS), so
    # at most one is outstanding per host however often the reaper runs.
    housekeeping_sent_at = models.DateTimeField(null=True, blank=True)
    housekeeping_at = models.DateTimeField(null=True, blank=True, help_text="When its last housekeeping ended.")
    housekeeping = models.JSONField(default=dict, blank=True, help_text="What its last housekeeping removed.")
    # Its warm runners per runtime as its heartbeat last read them (hosts.warm.host_warm_report):
    # the settings it runs with and, per pool shape, the version, runners ready and starting and
    # their memory. Written by the host's workers alone; read by hosts.selectors.version_warm.
    warm = models.JSONField(default=dict, blank=True, help_text="Its warm runners at its last heartbeat.")

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class DeletedVersion(models.Model):
    """A deleted service version whose artefacts each host removes from what it holds: the code
    folder a local host materialised, the image a Docker engine pulled. Only the version id is
    kept; every name and path is derived from it on the host, never stored."""

    version_id = models.CharField(max_length=64, unique=True)
    runtime = models.CharField(max_length=20)
    deleted_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("-deleted_at",)

    def __str__(self) -> str:
        return f"{self.runtime} {self.version_id}"
