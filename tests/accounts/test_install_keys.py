"""Provider tokens across the move to per-install keys: an upgraded install still reads its old
tokens, ``rotate_provider_tokens`` rewrites them with the new key, a wrong key reads nothing."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command

from accounts import crypto
from accounts.models import ProviderToken
from planqk_portal.install_keys import LEGACY_DEVELOPMENT_SECRET_KEY, install_secret, new_fernet_key


@pytest.mark.django_db
def test_tokens_of_an_upgraded_install_stay_readable_and_are_rotated(settings, user):
    # Written by the old code: the key derived from the repository's development key.
    settings.SECRET_KEY = LEGACY_DEVELOPMENT_SECRET_KEY
    settings.PLANQK_FIELD_ENCRYPTION_KEY = ""
    old = crypto.encrypt("ibm-token-of-the-victim")
    ProviderToken.objects.create(user=user, provider="IBM", ciphertext=old, last4="ctim")
    # After the upgrade: a per-install signing key and field key.
    new_key = new_fernet_key()
    settings.SECRET_KEY = "per-install-" + "k" * 50
    settings.PLANQK_FIELD_ENCRYPTION_KEY = new_key
    assert crypto.decrypt(old) == "ibm-token-of-the-victim"
    call_command("rotate_provider_tokens")
    stored = bytes(ProviderToken.objects.get(user=user).ciphertext)
    assert stored != bytes(old)
    assert Fernet(new_key.encode()).decrypt(stored) == b"ibm-token-of-the-victim"
    # The repository's key alone no longer reads it.
    settings.SECRET_KEY = LEGACY_DEVELOPMENT_SECRET_KEY
    settings.PLANQK_FIELD_ENCRYPTION_KEY = ""
    with pytest.raises(ValueError):
        crypto.decrypt(stored)


def test_a_listed_second_key_still_decrypts(settings):
    first, second = new_fernet_key(), new_fernet_key()
    settings.PLANQK_FIELD_ENCRYPTION_KEY = second
    written = crypto.encrypt("dwave-token")
    settings.PLANQK_FIELD_ENCRYPTION_KEY = f"{first},{second}"
    assert crypto.decrypt(written) == "dwave-token"
    assert Fernet(first.encode()).decrypt(crypto.rotate(written)) == b"dwave-token"
    with pytest.raises(InvalidToken):
        Fernet(first.encode()).decrypt(written)


def test_install_secret_is_made_once_private_and_shared(tmp_path):
    path = tmp_path / "sub" / "key"
    values = {install_secret(path, new_fernet_key) for _ in range(3)}
    assert len(values) == 1
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    assert install_secret(path, new_fernet_key) in values
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in path.parent.iterdir() if p.name != "key"]
