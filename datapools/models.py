"""Data pools: files grouped in data sources, private, shared with named users or public."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import models


class Visibility(models.TextChoices):
    PRIVATE = "PRIVATE", "Private (you and the users you share it with)"
    PUBLIC = "PUBLIC", "Public (every user can read it)"


class Permission(models.TextChoices):
    READ = "READ", "Read"
    WRITE = "WRITE", "Read and write"


class DataPool(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datapools")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.name


class DataPoolShare(models.Model):
    """Access for one person. Without ``user`` it is an invitation to ``email``, not yet registered.

    Sharing with an address nobody has registered looks to the owner exactly like sharing with
    a user (so nobody learns who has an account); the invitation becomes a share when someone
    confirms that address (``datapool_invitations_accept``).
    """

    pool = models.ForeignKey(DataPool, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datapool_shares", null=True, blank=True
    )
    # The address the owner shared with (lower case), kept for invitations and shown for both.
    email = models.EmailField(max_length=254, blank=True, default="")
    permission = models.CharField(max_length=5, choices=Permission.choices, default=Permission.READ)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("pool", "user"), name="one_share_per_user"),
            models.UniqueConstraint(
                fields=("pool", "email"), condition=models.Q(user__isnull=True), name="one_invitation_per_email"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool} shared with {self.address} ({self.permission})"

    @property
    def address(self) -> str:
        """The e-mail address shown for this share (the user's, or the invited one)."""
        return self.user.email if self.user_id else self.email


class DataSourceDescriptor(models.Model):
    """A group of files in a pool: the ``dataSourceDescriptorId`` of a reference."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pool = models.ForeignKey(DataPool, on_delete=models.CASCADE, related_name="descriptors")
    name = models.CharField(max_length=120)
    # Created with the pool; uploads and job results land here unless another source is chosen.
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-is_default", "name")
        constraints = [
            models.UniqueConstraint(fields=("pool", "name"), name="one_source_name_per_pool"),
            models.UniqueConstraint(
                fields=("pool",), condition=models.Q(is_default=True), name="one_default_source_per_pool"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DataFile(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pool = models.ForeignKey(DataPool, on_delete=models.CASCADE, related_name="files")
    descriptor = models.ForeignKey(DataSourceDescriptor, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to="datapools/", max_length=500)
    size = models.PositiveBigIntegerField(default=0)
    content_type = models.CharField(max_length=120, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.name

    @property
    def is_json(self) -> bool:
        return self.content_type == "application/json"

    @property
    def reference(self) -> dict[str, str]:
        """The object users paste as ``dataRef`` or ``paramsRef``."""
        return {
            "dataPoolId": str(self.pool_id),
            "dataSourceDescriptorId": str(self.descriptor_id),
            "fileId": str(self.id),
        }

    @property
    def reference_json(self) -> str:
        """The reference as one line of JSON, as the copy button puts it on the clipboard."""
        return json.dumps(self.reference)
