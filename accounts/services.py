"""Writes for accounts: personal access tokens and provider tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from planqk_portal.errors import ApplicationError

from .crypto import encrypt, hash_secret, new_secret
from .models import PersonalAccessToken, Provider, ProviderToken, TokenScope, User

TOKEN_PREFIX = "pqk_"
MAX_TOKEN_DAYS = 366


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: ``secret`` is shown once and never stored."""

    token: PersonalAccessToken
    secret: str


def personal_access_token_create(*, user: User, name: str, scopes: list[str], expires_days: int | None) -> IssuedToken:
    """Create a personal access token; returns the clear text once."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the token a name.", code="token:name-required")
    if len(name) > 100:
        raise ApplicationError("The name can be at most 100 characters.", code="token:name-too-long")
    valid = set(TokenScope.values)
    if not scopes:
        raise ApplicationError("Choose at least one scope.", code="token:scope-required")
    unknown = sorted(set(scopes) - valid)
    if unknown:
        raise ApplicationError(
            f"Unknown scope(s): {', '.join(unknown)}. Choose from {', '.join(sorted(valid))}.",
            code="token:unknown-scope",
        )
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise ApplicationError(f"Expiry must be between 1 and {MAX_TOKEN_DAYS} days.", code="token:bad-expiry")
    secret = new_secret(TOKEN_PREFIX)
    token = PersonalAccessToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    return IssuedToken(token=token, secret=secret)


def personal_access_token_revoke(*, user: User, token_id: int) -> PersonalAccessToken:
    """Revoke one of the user's tokens (idempotent)."""
    token = PersonalAccessToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise ApplicationError("No such token.", code="token:not-found", status=404)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def personal_access_token_authenticate(secret: str) -> PersonalAccessToken | None:
    """The active token for ``secret``, or None. Records the last use (at most once a minute)."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = (
        PersonalAccessToken.objects.select_related("user")
        .filter(token_hash=hash_secret(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or token.is_expired or not token.user.is_active:
        return None
    now = timezone.now()
    # Throttled so a busy CLI does not turn every read into a write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def provider_token_set(*, user: User, provider: str, value: str) -> ProviderToken:
    """Store or replace the user's token for a quantum provider, encrypted."""
    if provider not in Provider.values:
        raise ApplicationError(f"Unknown provider {provider!r}.", code="provider:unknown")
    value = (value or "").strip()
    if len(value) < 8:
        raise ApplicationError("That does not look like a provider token (too short).", code="provider:too-short")
    if len(value) > 4096:
        raise ApplicationError("That token is too long.", code="provider:too-long")
    with transaction.atomic():
        token, _ = ProviderToken.objects.select_for_update().get_or_create(
            user=user, provider=provider, defaults={"ciphertext": b"", "last4": ""}
        )
        token.ciphertext = encrypt(value)
        token.last4 = value[-4:]
        token.save()
    return token


def provider_token_delete(*, user: User, provider: str) -> None:
    """Delete the user's token for a provider (idempotent)."""
    ProviderToken.objects.filter(user=user, provider=provider).delete()
