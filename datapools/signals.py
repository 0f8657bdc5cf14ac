"""Stored content follows its row: a deleted DataFile's object is removed once the delete commits.

A signal rather than code in the services, because files are also deleted by cascades the
services never see: a pool or data source deleted, an account deleted, the admin.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import DataFile


@receiver(post_delete, sender=DataFile, dispatch_uid="datapools-remove-stored-object")
def remove_stored_object(sender: type, instance: DataFile, using: str, **kwargs: Any) -> None:
    from .services import remove_stored_objects

    # After commit only: a delete that rolls back must still find its content.
    transaction.on_commit(partial(remove_stored_objects, [instance.file.name]), using=using)
