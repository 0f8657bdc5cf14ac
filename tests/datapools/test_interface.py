"""The functions other apps call: references, reading JSON, saving results, pool lists."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.base import ContentFile

from datapools import selectors, services
from datapools.models import DataFile, DataPool, Permission, Visibility
from planqk_portal.errors import ApplicationError
from tests.conftest import make_user
from tests.datapools.conftest import stored_files

pytestmark = pytest.mark.django_db


def upload(user, pool, name: str, content: bytes, source=None) -> DataFile:
    return services.datafile_upload(user=user, pool=pool, upload=ContentFile(content, name=name), source=source)


def error_of(func, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        func(**kwargs)
    return info.value


def test_reference_of_an_uploaded_json_file_reads_back_its_value(user):
    pool = services.datapool_create(user=user, name="Sum example")
    datafile = upload(user, pool, "data.json", b'{"values": [100, 50, 200, 70, 0.69]}')
    ref = datafile.reference
    assert set(ref) == {"dataPoolId", "dataSourceDescriptorId", "fileId"}
    assert selectors.datafile_check_access(user=user, ref=ref) == datafile
    assert selectors.datafile_read_json(user=user, ref=ref, max_bytes=1024) == {"values": [100, 50, 200, 70, 0.69]}
