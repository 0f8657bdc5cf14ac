"""Jobs: one execution of a service version, from the Jobs UI, the REST API or the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from planqk_portal.logs import LogChunkBase


class JobStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    UNKNOWN = "UNKNOWN", "Unknown"


JOB_FINAL_STATES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.UNKNOWN})


JOB_ACTIVE_STATES = frozenset({JobStatus.PENDING, JobStatus.RUNNING})
# The end of the worker id of a job the reaper handed over and nobody has claimed yet (pid 0).
HANDED_OVER = ":0:handover"


class IllegalTransition(Exception):
    """A job transition that its current state does not allow (e.g. anything out of a final state)."""


class JobQuerySet(models.QuerySet):
    """Every change of a job's state, in one place (NetBox's ``Job.start()``/``terminate()``).

    Each transition is one conditional UPDATE on the state it leaves, so a late or second writer
    (a redelivered task, a worker that was handed over, a racing cancel) changes nothing and gets
    ``False``/``None`` back. Every move into a final state goes through :meth:`finish`, which
    writes the usage record in the same transaction: no road can end a job without metering it.
    """

    def active(self) -> JobQuerySet:
        return self.filter(status__in=JOB_ACTIVE_STATES)

    def claim(self, job_id: Any, *, worker: str) -> bool:
        """PENDING → RUNNING for ``worker``, or take over a RUNNING job the reaper handed over."""
        now = timezone.now()
        if self.filter(pk=job_id, status=JobStatus.PENDING).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker
        ):
            return True
        # The reaper hands a RUNNING job to a new worker by marking ``worker`` handed over (a
        # re-run clears it).
        free = Q(worker="") | Q(worker__endswith=HANDED_OVER)
        return bool(self.filter(free, pk=job_id, status=JobStatus.RUNNING).update(worker=worker, heartbeat_at=now))

    def record_start(self, job_id: Any, *, worker: str, runtime: str, handle: dict[str, Any]) -> bool:
        """The runtime started the service's code: from now on the execution is billable."""
        from django.db.models import F

        return bool(
            self.filter(pk=job_id, status=JobStatus.RUNNING, worker=worker).update(
                runtime=runtime,
                runtime_handle=handle,
                runtime_starts=F("runtime_starts") + 1,
                heartbeat_at=timezone.now(),
            )
        )

    def hand_over(self, job_id: Any, *, heartbeat_at: datetime | None, host: str = "") -> bool:
        """A RUNNING job whose worker stopped beating: free it for another worker (not final).

        ``worker`` keeps the host running the execution (``<host>:0:handover``): until a worker
        claims it, the reaper still judges the job by that host, so a host lost meanwhile gets the
        host-loss rule, not a hand-over to a host where nobody can reattach."""
        from django.db.models import F

        return bool(
            self.filter(pk=job_id, status=JobStatus.RUNNING, heartbeat_at=heartbeat_at).update(
                worker=f"{host}{HANDED_OVER}" if host else "",
                heartbeat_at=timezone.now(),
                enqueue_count=F("enqueue_count") + 1,
            )
        )

    def request_cancel(self, job_id: Any) -> Job | None:
        """Cancel: a PENDING job ends CANCELLED now; a RUNNING one is flagged and its worker stops it."""
        job = self.finish(
            job_id,
            status=JobStatus.CANCELLED,
            leaving=(JobStatus.PENDING,),
            code="job:cancelled",
            detail="Cancelled before it started.",
            cancel_requested=True,
        )
        if job is None:
            self.filter(pk=job_id, status=JobStatus.RUNNING).update(cancel_requested=True)
        return job

    def finish(
        self,
        job_id: Any,
        *,
        status: str,
        leaving: Iterable[str] = (JobStatus.RUNNING,),
        worker: str | None = None,
        code: str = "",
        detail: str = "",
        **fields: Any,
    ) -> Job | None:
        """Move a job into the final ``status`` from one of the ``leaving`` states; meter it.

        ``worker``: only if this worker still owns it. Returns the finished job, or None when the
        job was no longer in a state it may leave (another writer ended it first). Raises
        :class:`IllegalTransition` for a non-final target or a final state to leave.
        """
        leaving = tuple(leaving)
        if status not in JOB_FINAL_STATES or any(state in JOB_FINAL_STATES for state in leaving):
            raise IllegalTransition(f"a job cannot move from {'/'.join(leaving)} to {status}")
        now = timezone.now()
        rows = self.filter(pk=job_id, status__in=leaving)
        if worker is not None:
            rows = rows.filter(worker=worker)
        with transaction.atomic():
            if not rows.update(
                status=status,
                ended_at=now,
                heartbeat_at=now,
                error_code=code[:100],
                error_detail=detail[:20000],
                secrets_ciphertext=None,
                **fields,
            ):
                return None
            job = self.model.objects.select_related("subscription").get(pk=job_id)
            job.record_usage()
        return job

    def expire_pending(self, *, created_before: datetime) -> int:
        """PENDING jobs no worker started in time: FAILED ``platform:not-started`` (not billed)."""
        expired = 0
        for job_id in self.filter(status=JobStatus.PENDING, created_at__lt=created_before).values_list("pk", flat=True):
            if self.finish(
                job_id,
                status=JobStatus.FAILED,
                leaving=(JobStatus.PENDING,),
                code="platform:not-started",
                detail="No worker started this job in time. Run it again.",
            ):
                expired += 1
        return expired


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
    # Current generation: the request's ``$tags`` (shown with the job) and its ``$secrets``, a JSON
    # object encrypted with the install's key (accounts.crypto). The engine needs them while the
    # execution runs (to start it, and to redact their values from every stored log line, also
    # after a takeover); every final state erases them (:meth:`JobQuerySet.finish`).
    tags = models.JSONField(default=list, blank=True)
    secrets_ciphertext = models.BinaryField(null=True, blank=True, editable=False)

    objects = JobQuerySet.as_manager()

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
    def started_execution(self) -> bool:
        """Whether a runtime started the service's code for this job (what billing counts)."""
        return self.runtime_starts > 0

    @property
    def billable(self) -> bool:
        """The billing rule: an execution that started is billable under its plan, also when it
        failed in the service's code, timed out or was cancelled later; one that never started
        (cancelled while pending, unreadable input) or that the platform (or, for a URL-imported
        service, the connection to its provider) failed is not."""
        # ``upstream:*``: the provider of a URL-imported service could not be reached or asked.
        return self.is_final and self.started_execution and not self.error_code.startswith(("platform:", "upstream:"))

    def record_usage(self) -> None:
        """Write this final job's usage record (once); see :func:`jobs.services.job_record_usage`."""
        from .services import job_record_usage

        job_record_usage(job=self)

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


def job_result_file_path(instance: JobResultFile, filename: str) -> str:
    # One folder per job; ``name`` was made a safe file name before the row is written.
    return f"job-results/{instance.job_id}/{filename}"


class JobResultFile(models.Model):
    """A file the program wrote into its output directory (current generation), stored at the
    job's final state in the same transaction as the state change."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="result_files")
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to=job_result_file_path, max_length=500)
    size_bytes = models.PositiveBigIntegerField(default=0)
    media_type = models.CharField(max_length=255, default="application/octet-stream")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=("job", "name"), name="job_result_file_name_unique")]

    def __str__(self) -> str:
        return f"{self.name} of {self.job_id}"


@receiver(post_delete, sender=JobResultFile, dispatch_uid="jobs-remove-result-file")
def _remove_result_file(sender: type, instance: JobResultFile, using: str, **kwargs: Any) -> None:
    # As data pool files (datapools.signals): the stored object follows its row, also through
    # cascades (a job, a service or an account deleted), once the delete commits.
    from functools import partial

    from datapools.services import remove_stored_objects

    transaction.on_commit(partial(remove_stored_objects, [instance.file.name]), using=using)
