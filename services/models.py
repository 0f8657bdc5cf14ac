"""Services, their versions (one build each) and pricing plans."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from hosts.routing import QUEUE_NAME_RE
from planqk_portal.logs import LogChunkBase


class QuantumBackend(models.TextChoices):
    NONE = "NONE", "None (local simulators)"
    IBM = "IBM", "IBM"
    DWAVE = "DWAVE", "D-Wave"


class SourceType(models.TextChoices):
    FILE = "FILE", "Import from file"
    URL = "URL", "Import from URL"


class Lifecycle(models.TextChoices):
    CREATED = "CREATED", "Created"
    ACCESSIBLE = "ACCESSIBLE", "Published for internal use"
    PUBLISHED = "PUBLISHED", "Published in the marketplace"


class BuildStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    BUILDING = "BUILDING", "Building"
    READY = "READY", "Ready"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Generation(models.TextChoices):
    """Which service contract a version's code follows (detected at build time, see
    :func:`planqk_runtime.generation.detect`)."""

    DOCUMENTED = "2022", "2022 template: run(data, params)"
    CURRENT = "current", "Current: typed run() parameters"


BUILD_FINAL_STATES = frozenset({BuildStatus.READY, BuildStatus.FAILED, BuildStatus.CANCELLED})

service_name_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use lower-case letters, digits and dashes (it becomes part of the service URL).",
)


class Service(models.Model):
    """A provider's service. Its ``name`` is the URL segment of the gateway address."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=64, validators=[service_name_validator])
    title = models.CharField(max_length=120, blank=True, help_text="Display name; the name when empty.")
    description = models.TextField(blank=True, help_text="Markdown.")
    quantum_backend = models.CharField(max_length=8, choices=QuantumBackend.choices, default=QuantumBackend.NONE)
    source = models.CharField(max_length=4, choices=SourceType.choices, default=SourceType.FILE)
    external_url = models.URLField(blank=True, help_text="For services imported from a URL.")
    lifecycle = models.CharField(max_length=12, choices=Lifecycle.choices, default=Lifecycle.CREATED)
    memory_mb = models.PositiveIntegerField(default=1024, validators=[MinValueValidator(64)])
    cpus = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=1,
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal(64))],
    )
    timeout_seconds = models.PositiveIntegerField(default=600, validators=[MinValueValidator(5)])
    published_version = models.ForeignKey(
        "ServiceVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set instead of deleting the row when ended subscriptions (billing history) still point at it.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A lifecycle to reach as soon as a version is READY (e.g. demo services published once built).
    publish_on_ready = models.CharField(max_length=12, choices=Lifecycle.choices, blank=True)
    skip_example_run = models.BooleanField(
        default=False,
        help_text="Builds check that the code imports but do not run the API spec's example input "
        "(for services that need hardware tokens).",
    )
    # When the host running an execution is lost (jobs.engine.job_settle_stale): run it again from
    # the start on another host, if it printed no interim result yet; off for code whose first
    # steps may already have cost something (a paid hardware call), which then fails unbilled.
    retry_on_host_loss = models.BooleanField(
        default=True,
        help_text="Run an execution again on another host when its host is lost before any interim result.",
    )
    # An operator's pin (hosts.routing): the service's builds and executions go only to hosts that
    # consume this queue (PLANQK_WORKER_QUEUES), e.g. those with a GPU or a hardware token's network.
    # Staff set it (hosts.routing.may_pin_queue); providers read it and cannot write it.
    queue = models.CharField(
        max_length=40,
        blank=True,
        validators=[
            RegexValidator(
                QUEUE_NAME_RE,
                "Lower-case letters, digits and dashes, as the hosts' PLANQK_WORKER_QUEUES name it.",
            )
        ],
        help_text="Pinned worker queue (set by operators): only hosts consuming it run this service; empty: any host "
        "with the version's runtime.",
    )

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=("owner", "name"), name="service_name_unique_per_owner")]
        indexes = [models.Index(fields=("lifecycle",))]
        # Operators who may send a service's code to chosen hosts (hosts.routing.may_pin_queue).
        permissions = [("pin_service_queue", "Can pin a service to a worker queue")]

    def __str__(self) -> str:
        return self.title or self.name

    @property
    def display_name(self) -> str:
        return self.title or self.name


class ServiceVersion(models.Model):
    """One uploaded version of a service and its build."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=BuildStatus.choices, default=BuildStatus.PENDING)
    archive = models.FileField(upload_to="service-archives/", blank=True)
    api_spec = models.TextField(blank=True, help_text="OpenAPI 3 document (YAML or JSON).")
    requirements = models.TextField(blank=True)
    runtime = models.CharField(max_length=16, blank=True, help_text="The runtime that built it.")
    generation = models.CharField(
        max_length=8,
        choices=Generation.choices,
        default=Generation.DOCUMENTED,
        help_text="The service contract its code follows; set by the build.",
    )
    build_handle = models.JSONField(null=True, blank=True)
    build_error = models.TextField(blank=True)
    build_error_code = models.CharField(max_length=64, blank=True)
    build_started_at = models.DateTimeField(null=True, blank=True)
    build_ended_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    unpublished_at = models.DateTimeField(null=True, blank=True, help_text="Set when no longer callable.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=("service", "version"), name="version_unique_per_service")]
        indexes = [models.Index(fields=("status",))]

    def __str__(self) -> str:
        return f"{self.service.name} {self.version}"

    @property
    def is_final(self) -> bool:
        return self.status in BUILD_FINAL_STATES

    @property
    def is_callable(self) -> bool:
        return self.status == BuildStatus.READY and self.unpublished_at is None


class BuildLogChunk(LogChunkBase):
    version = models.ForeignKey(ServiceVersion, on_delete=models.CASCADE, related_name="log_chunks")

    class Meta(LogChunkBase.Meta):
        constraints = [models.UniqueConstraint(fields=("version", "seq"), name="build_log_seq_unique")]


class PlanKind(models.TextChoices):
    FREE = "FREE", "Free"
    PER_EXECUTION = "PER_EXECUTION", "Price per execution"
    MONTHLY = "MONTHLY", "Monthly flat price"


class PricingPlan(models.Model):
    """Terms for subscribers. A changed plan is a new row; subscriptions keep the row they chose."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="plans")
    name = models.CharField(max_length=60)
    kind = models.CharField(max_length=16, choices=PlanKind.choices, default=PlanKind.FREE)
    price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="eur")
    requests_per_minute = models.PositiveIntegerField(default=120)
    max_concurrent = models.PositiveIntegerField(default=5)
    is_active = models.BooleanField(default=True, help_text="Offered to new subscribers.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("price_cents", "created_at")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_paid(self) -> bool:
        return self.kind != PlanKind.FREE and self.price_cents > 0
