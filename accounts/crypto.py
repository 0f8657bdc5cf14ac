"""Encryption at rest for provider tokens, and hashing for high-entropy secrets."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet() -> Fernet:
    key = settings.PLANQK_FIELD_ENCRYPTION_KEY
    if key:
        return Fernet(key.encode())
    # Derived rather than stored so a deployment needs only DJANGO_SECRET_KEY to start.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"planqk-provider-tokens").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


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
