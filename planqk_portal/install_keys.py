"""Per-install secrets kept in the data directory: made once, readable only by their owner.

``make run`` (and any deployment without ``DJANGO_SECRET_KEY``) gets its signing key and its
provider-token key from here instead of a key in the repository. Standard library only: the
settings module imports this before Django is configured.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

#: The key every install used before keys were made per install (it is in the repository, so it
#: protects nothing). Kept only to read provider tokens an older install encrypted with it.
LEGACY_DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-key-change-me-in-production-0123456789"

SECRET_KEY_FILE = "secret-key"
FIELD_ENCRYPTION_KEY_FILE = "field-encryption-key"


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)


def new_fernet_key() -> str:
    # What cryptography.fernet.Fernet.generate_key() returns: 32 random bytes, url-safe base64.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def install_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret stored at ``path``, made with ``make()`` the first time (mode 0600).

    Safe when several processes start at once (web server, worker, scheduler): the secret is
    written to a private temporary file that is then linked into place, which fails if another
    process got there first; everyone then reads the one file that won. A file someone else can
    read is tightened to 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(make() + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty; remove it to make a new key (signed sessions end)")
    return value
