"""Stored content follows its row: a deleted DataFile's object is removed once the delete commits.

A signal rather than code in the services, because files are also deleted by cascades the
services never see: a pool or data source deleted, an account deleted, the admin.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from allauth.account.signals import email_confirmed, user_signed_up
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import DataFile


@receiver(post_delete, sender=DataFile, dispatch_uid="datapools-remove-stored-object")
def remove_stored_object(sender: type, instance: DataFile, using: str, **kwargs: Any) -> None:
    from .services import remove_stored_objects

    # After commit only: a delete that rolls back must still find its content.
    transaction.on_commit(partial(remove_stored_objects, [instance.file.name]), using=using)


@receiver(email_confirmed, dispatch_uid="datapools-accept-invitations-on-confirm")
def accept_invitations_on_confirm(sender: Any, request: Any, email_address: Any, **kwargs: Any) -> None:
    """Invitations to an address become shares once its owner has proven it is theirs."""
    from .services import datapool_invitations_accept

    datapool_invitations_accept(user=email_address.user, email=email_address.email)


@receiver(user_signed_up, dispatch_uid="datapools-accept-invitations-on-signup")
def accept_invitations_on_signup(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """At sign-up only an address already verified (mandatory verification happens later, above)."""
    from allauth.account.models import EmailAddress

    from .services import datapool_invitations_accept

    for address in EmailAddress.objects.filter(user=user, verified=True):
        datapool_invitations_accept(user=user, email=address.email)
