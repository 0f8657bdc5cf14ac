"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from .crypto import decrypt
from .models import PersonalAccessToken, ProviderToken, User


def personal_access_token_list(*, user: User) -> QuerySet[PersonalAccessToken]:
    return PersonalAccessToken.objects.filter(user=user)


def provider_token_list(*, user: User) -> QuerySet[ProviderToken]:
    return ProviderToken.objects.filter(user=user)


def provider_has_token(*, user: User, provider: str) -> bool:
    return ProviderToken.objects.filter(user=user, provider=provider).exists()


def provider_token_value(*, user: User, provider: str) -> str | None:
    """The clear text of a stored provider token, for the execution environment only."""
    token = ProviderToken.objects.filter(user=user, provider=provider).first()
    return decrypt(token.ciphertext) if token else None
