"""Encryption at rest for provider tokens, and hashing for high-entropy secrets."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from planqk_portal.install_keys import LEGACY_DEVELOPMENT_SECRET_KEY


def _derived(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"planqk-provider-tokens").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet() -> MultiFernet:
    """The first key encrypts; every key decrypts (``MultiFernet``, cryptography's own rotation).

    Keys, in order: ``PLANQK_FIELD_ENCRYPTION_KEY`` (one or several, comma-separated; settings
    fill it with the install's own key when no ``DJANGO_SECRET_KEY`` is set), then the key derived
    from the signing key (how earlier versions encrypted, and still the default when
    ``DJANGO_SECRET_KEY`` is set), then the key derived from the old development key, so an
    existing install's tokens stay readable after the upgrade (``manage.py rotate_provider_tokens``
    re-encrypts them with the first key).
    """
    keys = [Fernet(key.strip().encode()) for key in settings.PLANQK_FIELD_ENCRYPTION_KEY.split(",") if key.strip()]
    keys.append(_derived(settings.SECRET_KEY))
    if settings.SECRET_KEY != LEGACY_DEVELOPMENT_SECRET_KEY:
        keys.append(_derived(LEGACY_DEVELOPMENT_SECRET_KEY))
    return MultiFernet(keys)


def rotate(ciphertext: bytes | memoryview) -> bytes:
    """The same secret encrypted with the first key (``ValueError`` when no key reads it)."""
    try:
        return _fernet().rotate(bytes(ciphertext))
    except InvalidToken as exc:
        raise ValueError("The stored secret cannot be decrypted with any configured key.") from exc


def encrypt(plaintext: str) -> bytes:
    """Encrypt a secret for storage."""
    return _fernet().encrypt(plaintext.encode())


def decrypt(ciphertext: bytes | memoryview) -> str:
    """Decrypt a stored secret; raises ValueError when the key changed."""
    try:
        return _fernet().decrypt(bytes(ciphertext)).decode()
    except InvalidToken as exc:
        raise ValueError("The stored secret cannot be decrypted with the current key.") from exc


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A random, URL-safe secret with a readable prefix."""
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret: fast on purpose, since guessing is hopeless anyway."""
    return hashlib.sha256(secret.encode()).hexdigest()
