"""``manage.py seed_demo``: the demo account (and, where the capabilities exist, demo services)."""

from __future__ import annotations

import importlib
import os
from argparse import ArgumentParser

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User

DEMO_EMAIL = os.environ.get("PLANQK_DEMO_EMAIL", "demo@example.com")
DEMO_PASSWORD = os.environ.get("PLANQK_DEMO_PASSWORD", "quantum-demo-2026")

# Each capability may contribute demo content with a `seed_demo(user, stdout)` function.
SEED_HOOKS = ("payments.demo", "services.demo", "applications.demo", "datapools.demo", "algorithms.demo")


class Command(BaseCommand):
    help = "Create the demo account and demo content (idempotent)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--no-content", action="store_true", help="Only the account.")

    def handle(self, *args: object, **options: object) -> None:
        with transaction.atomic():
            user, created = User.objects.get_or_create(email=DEMO_EMAIL)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
        if not options["no_content"]:
            for module_name in SEED_HOOKS:
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError as exc:
                    if exc.name != module_name:
                        raise
                    continue
                module.seed_demo(user, self.stdout)
        state = "created" if created else "already there"
        self.stdout.write(self.style.SUCCESS(f"Demo account ({state}): {DEMO_EMAIL} / password: {DEMO_PASSWORD}"))
