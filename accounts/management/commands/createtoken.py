"""``manage.py createtoken EMAIL``: print a new personal access token for an existing account."""

from __future__ import annotations

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import personal_access_token_create
from planqk_portal.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a personal access token for an existing account and print it (shown once)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="created by manage.py createtoken")
        parser.add_argument("--scopes", default="api", help="Comma-separated scopes (default: api).")
        parser.add_argument("--expires-days", type=int, default=None, help="Days until expiry (default: none).")

    def handle(self, *args: object, **options: object) -> None:
        email = str(options["email"]).strip().lower()
        user = User.objects.filter(email=email).first()
        if user is None:
            raise CommandError(f"No account with the e-mail address {email}.")
        scopes = [s.strip() for s in str(options["scopes"]).split(",") if s.strip()]
        try:
            issued = personal_access_token_create(
                user=user, name=str(options["name"]), scopes=scopes, expires_days=options["expires_days"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(issued.secret)
