"""Algorithms, their implementations and the implementations' files (versions of user code).

An :class:`Algorithm` is public knowledge: anyone logged in reads it, its author edits it. An
:class:`Implementation` belongs to an owner and is private, shared with named users or public;
who may see one is decided in :mod:`algorithms.selectors` only. Each :class:`ImplementationFile`
is one version of its user code (an archive checked like a service upload); a new file is a new
version and the old ones stay. :class:`ServiceOrigin` records which file a service was made from.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ProblemClass(models.TextChoices):
    OPTIMIZATION = "OPTIMIZATION", "Optimization"
    SIMULATION = "SIMULATION", "Simulation"
    MACHINE_LEARNING = "MACHINE_LEARNING", "Machine learning"
    CRYPTOGRAPHY = "CRYPTOGRAPHY", "Cryptography"
    SEARCH = "SEARCH", "Search"
    FUNDAMENTALS = "FUNDAMENTALS", "Fundamentals"
    OTHER = "OTHER", "Other"


class Sdk(models.TextChoices):
    QISKIT = "QISKIT", "Qiskit"
    DWAVE_OCEAN = "DWAVE_OCEAN", "D-Wave Ocean"
    PENNYLANE = "PENNYLANE", "PennyLane"
    CIRQ = "CIRQ", "Cirq"
    PYTHON = "PYTHON", "Plain Python"
    OTHER = "OTHER", "Other"


class Visibility(models.TextChoices):
    PRIVATE = "PRIVATE", "Private"
    SHARED = "SHARED", "Shared with named users"
    PUBLIC = "PUBLIC", "Public"


class FileSource(models.TextChoices):
    UPLOAD = "UPLOAD", "Uploaded archive"
    GIT = "GIT", "Git repository"


class FileStatus(models.TextChoices):
    PENDING = "PENDING", "Waiting to be fetched"
    FETCHING = "FETCHING", "Fetching"
    READY = "READY", "Ready"
    FAILED = "FAILED", "Failed"


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Algorithm(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    summary = models.CharField(max_length=300)
    description = models.TextField(blank=True, help_text="Markdown; formulas in LaTeX between $ or $$.")
    problem_class = models.CharField(max_length=20, choices=ProblemClass.choices, default=ProblemClass.OTHER)
    tags = models.ManyToManyField(Tag, blank=True, related_name="algorithms")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="algorithms"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Implementation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    algorithm = models.ForeignKey(Algorithm, on_delete=models.CASCADE, related_name="implementations")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="implementations")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, help_text="Markdown.")
    sdk = models.CharField(max_length=16, choices=Sdk.choices, default=Sdk.PYTHON)
    backend = models.CharField(max_length=120, blank=True, help_text="e.g. Qiskit Aer simulator, simulated annealing")
    license = models.CharField(max_length=64, blank=True, help_text="An SPDX identifier such as Apache-2.0")
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ImplementationShare", related_name="implementations_shared", blank=True
    )
    git_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["algorithm__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["algorithm", "owner", "name"], name="implementation_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.algorithm.name}: {self.name}"


class ImplementationShare(models.Model):
    implementation = models.ForeignKey(Implementation, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["implementation", "user"], name="implementation_share_once")]

    def __str__(self) -> str:
        return f"{self.implementation} shared with {self.user}"


class ImplementationFile(models.Model):
    """One version of an implementation's user code: a checked archive (uploaded or fetched from git)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    implementation = models.ForeignKey(Implementation, on_delete=models.CASCADE, related_name="files")
    version = models.PositiveIntegerField()
    filename = models.CharField(max_length=200)
    source = models.CharField(max_length=8, choices=FileSource.choices, default=FileSource.UPLOAD)
    status = models.CharField(max_length=10, choices=FileStatus.choices, default=FileStatus.READY)
    archive = models.CharField(max_length=300, blank=True, help_text="Storage name of the checked zip.")
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    requirements = models.TextField(blank=True)
    has_api_spec = models.BooleanField(default=False)
    git_url = models.CharField(max_length=500, blank=True)
    git_ref = models.CharField(max_length=200, blank=True)
    git_commit = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["implementation", "version"], name="implementation_file_version")
        ]

    def __str__(self) -> str:
        return f"{self.implementation} v{self.version}"

    @property
    def is_runnable(self) -> bool:
        return self.status == FileStatus.READY and bool(self.archive)


class ServiceOrigin(models.Model):
    """The implementation file a service was created from (Create Service next to the file)."""

    service = models.OneToOneField("services.Service", on_delete=models.CASCADE, related_name="origin")
    implementation = models.ForeignKey(Implementation, on_delete=models.CASCADE, related_name="origins")
    file = models.ForeignKey(ImplementationFile, on_delete=models.CASCADE, related_name="origins")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.service_id} from {self.file_id}"
