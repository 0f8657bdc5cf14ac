"""``manage.py rotate_provider_tokens``: re-encrypt stored provider tokens with the current key.

Run by ``make run`` on every start, and after adding a new first key to
``PLANQK_FIELD_ENCRYPTION_KEY``: tokens encrypted with an older key (an upgraded install's key
derived from the signing key) are rewritten with the first one. Idempotent.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.crypto import rotate
from accounts.models import ProviderToken


class Command(BaseCommand):
    help = "Re-encrypt stored provider tokens with the first configured key."

    def handle(self, *args: object, **options: object) -> None:
        rotated = unreadable = 0
        for pk in ProviderToken.objects.values_list("pk", flat=True):
            with transaction.atomic():
                token = ProviderToken.objects.select_for_update().get(pk=pk)
                try:
                    token.ciphertext = rotate(token.ciphertext)
                except ValueError:
                    unreadable += 1
                    continue
                token.save(update_fields=["ciphertext"])
                rotated += 1
        if unreadable:
            self.stderr.write(
                f"{unreadable} provider token(s) cannot be read with any configured key; left as they are"
            )
        if rotated or unreadable:
            self.stdout.write(f"Provider tokens re-encrypted with the current key: {rotated}")
