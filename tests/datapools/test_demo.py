"""The demo pool seeded by `manage.py seed_demo`."""

from __future__ import annotations

import io

import pytest

from datapools import selectors
from datapools.demo import seed_demo
from datapools.models import DataFile, DataPool

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_sum_example_pool_once(user):
    out = io.StringIO()
    pool = seed_demo(user, out)
    seed_demo(user, out)  # idempotent

    assert list(DataPool.objects.values_list("name", flat=True)) == ["Sum example"]
    files = {f.name: f for f in DataFile.objects.filter(pool=pool)}
    assert set(files) == {"data.json", "params.json"}
    read = {name: selectors.datafile_read_json(user=user, ref=f.reference, max_bytes=1024) for name, f in files.items()}
    assert read == {"data.json": {"values": [100, 50, 200, 70, 0.69]}, "params.json": {"round_off": False}}
    assert "Sum example" in out.getvalue()


def test_seed_demo_restores_a_deleted_demo_file(user):
    pool = seed_demo(user, io.StringIO())
    DataFile.objects.filter(pool=pool, name="params.json").delete()
    seed_demo(user, io.StringIO())
    assert sorted(pool.files.values_list("name", flat=True)) == ["data.json", "params.json"]
