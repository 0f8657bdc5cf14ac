"""``manage.py stop_warm_runners``: stop this host's warm runners and containers nobody took.

Warm runners outlive the worker that started them (a restarted worker takes them), so stopping
a host means stopping its workers first and then running this; ``make run`` does it on Ctrl-C.
Executions in progress are not touched. Idempotent.
"""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand

from jobs.runtime_factory import warm_stop_all


class Command(BaseCommand):
    help = "Stop this host's idle warm runners (run it after stopping the host's workers)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--wait",
            type=float,
            default=20.0,
            metavar="SECONDS",
            help="how long to wait for runners still starting, to stop them too (default 20)",
        )

    def handle(self, *args: object, **options: object) -> None:
        stopped = warm_stop_all(wait_seconds=max(0.0, float(options["wait"])))  # type: ignore[arg-type]
        self.stdout.write(f"warm runners: stopped {stopped}")
