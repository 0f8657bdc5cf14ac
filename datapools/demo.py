"""Demo content: the "Sum example" pool with the sample service's input and parameters."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User

from . import services
from .models import DataFile, DataPool

DEMO_POOL = "Sum example"
DEMO_FILES = {
    "data.json": {"values": [100, 50, 200, 70, 0.69]},
    "params.json": {"round_off": False},
}


def seed_demo(user: User, stdout: Any) -> DataPool:
    """Create the demo pool and its two files unless they exist (idempotent)."""
    with transaction.atomic():
        pool = DataPool.objects.filter(owner=user, name=DEMO_POOL).order_by("created_at").first()
        if pool is None:
            pool = services.datapool_create(
                user=user,
                name=DEMO_POOL,
                description="Input and parameters for the sum sample service: pass a file's reference as "
                "dataRef or paramsRef.",
            )
        for name, payload in DEMO_FILES.items():
            if not DataFile.objects.filter(pool=pool, name=name).exists():
                services.datafile_create_from_json(user=user, pool=pool, name=name, payload=payload)
    stdout.write(f"Data pool “{DEMO_POOL}”: {', '.join(DEMO_FILES)}")
    return pool
