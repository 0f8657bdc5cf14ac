"""The Celery application, configured from Django settings with the CELERY_ namespace."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planqk_portal.settings")

app = Celery("planqk_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every worker keeps its host's heartbeat row fresh (hosts.worker): the reaper tells a lost host
# from a lost worker process by it.
# Each worker consumes the queues routing sends its host's work to (hosts.routing).
from celery.signals import celeryd_after_setup  # noqa: E402

from hosts.worker import HostHeartbeat, consume_routed_queues  # noqa: E402 - after the app exists, as Celery's docs add steps

app.steps["worker"].add(HostHeartbeat)
celeryd_after_setup.connect(consume_routed_queues, weak=False)
