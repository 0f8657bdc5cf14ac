"""Users, personal access tokens and provider tokens."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A platform account, identified by e-mail. ``uuid`` is the gateway's context id."""

    username = None
    email = models.EmailField("e-mail address", unique=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.email

    @property
    def context_id(self) -> str:
        return str(self.uuid)


class TokenScope(models.TextChoices):
    API = "api", "api: use the REST API and the CLI"
    READ = "read", "read: read-only access"


class PersonalAccessToken(models.Model):
    """A token for the REST API and the CLI; only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, shown to tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class Provider(models.TextChoices):
    IBM = "IBM", "IBM Quantum"
    DWAVE = "DWAVE", "D-Wave Leap"


class ProviderToken(models.Model):
    """A quantum provider's API token, encrypted at rest (Fernet)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="provider_tokens")
    provider = models.CharField(max_length=10, choices=Provider.choices)
    ciphertext = models.BinaryField()
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("user", "provider"), name="one_token_per_provider")]
        ordering = ("provider",)

    def __str__(self) -> str:
        return f"{self.get_provider_display()} token ****{self.last4}"

    @property
    def masked(self) -> str:
        return f"••••••••{self.last4}"
