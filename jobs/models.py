"""Jobs: one execution of a service version, from the Jobs UI, the REST API or the gateway."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from planqk_portal.logs import LogChunkBase


class JobStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    UNKNOWN = "UNKNOWN", "Unknown"


JOB_FINAL_STATES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.UNKNOWN})


class JobSource(models.TextChoices):
    UI = "UI", "Jobs page"
    API = "API", "REST API"
    GATEWAY = "GATEWAY", "Service API"


class Job(models.Model):
    """One execution. ``owner`` is whose rights apply: the user, or the application's owner."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey("services.Service", on_delete=models.CASCADE, related_name="jobs")
    service_version = models.ForeignKey("services.ServiceVersion", on_delete=models.CASCADE, related_name="jobs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    application = models.ForeignKey(
        "applications.Application", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    subscription = models.ForeignKey(
        "applications.Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    source = models.CharField(max_length=8, choices=JobSource.choices, default=JobSource.UI)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)
    params = models.JSONField(null=True, blank=True)
    data_ref = models.JSONField(null=True, blank=True)
    params_ref = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_metadata = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_detail = models.TextField(blank=True)
    runtime = models.CharField(max_length=16, blank=True)
    runtime_handle = models.JSONField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    timeout_seconds = models.PositiveIntegerField(default=600)
    peak_memory_kb = models.PositiveBigIntegerField(null=True, blank=True)
    log_truncated = models.BooleanField(default=False)
    # Bytes of the execution's output already turned into log chunks and interim results, saved
    # with them in one transaction: a worker that takes over a running job reads on from here.
    output_offset = models.PositiveBigIntegerField(default=0)
    # How often the execution task was enqueued (the reaper re-enqueues a lost one once).
    enqueue_count = models.PositiveSmallIntegerField(default=0)
    # How often a runtime started this job's execution: 1 at most, or it ran twice.
    runtime_starts = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    save_result_to_pool = models.BooleanField(default=False)
    result_pool = models.ForeignKey(
        "datapools.DataPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result_file = models.ForeignKey(
        "datapools.DataFile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=("owner", "-created_at")),
            models.Index(fields=("status",)),
            models.Index(fields=("subscription", "status")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=("application", "idempotency_key"),
                condition=models.Q(idempotency_key__isnull=False),
                name="job_idempotency_key_unique",
            )
        ]

    def __str__(self) -> str:
        return f"Job {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in JOB_FINAL_STATES

    @property
    def is_platform_error(self) -> bool:
        """True when the platform failed (not the service's code or its input)."""
        return self.error_code.startswith("platform:")

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None


class JobLogChunk(LogChunkBase):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_chunks")

    class Meta(LogChunkBase.Meta):
        constraints = [models.UniqueConstraint(fields=("job", "seq"), name="job_log_seq_unique")]


class InterimResult(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="interim_results")
    seq = models.PositiveIntegerField()
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("seq",)
        constraints = [models.UniqueConstraint(fields=("job", "seq"), name="interim_seq_unique")]

    def __str__(self) -> str:
        return f"Interim result {self.seq} of {self.job_id}"
