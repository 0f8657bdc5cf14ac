"""The functions other apps call: references, reading JSON, saving results, pool lists."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from datapools import selectors, services
from datapools.models import DataFile, DataPool, Permission, Visibility
from datapools.selectors import Access
from planqk_portal.errors import ApplicationError
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

SUM_DATA = b'{"values": [100, 50, 200, 70, 0.69]}'


def upload(user, pool, name: str, content: bytes, source=None) -> DataFile:
    return services.datafile_upload(user=user, pool=pool, upload=ContentFile(content, name=name), source=source)


def error_of(func, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        func(**kwargs)
    return info.value


@pytest.fixture
def third_user(db):
    return make_user("carol@example.com")


@pytest.fixture
def pool(user):
    return services.datapool_create(user=user, name="Sum example")


@pytest.fixture
def data_file(user, pool):
    return upload(user, pool, "data.json", SUM_DATA)


def test_reference_of_an_uploaded_json_file_reads_back_its_value(user, data_file):
    ref = data_file.reference
    assert ref == {
        "dataPoolId": str(data_file.pool_id),
        "dataSourceDescriptorId": str(data_file.descriptor_id),
        "fileId": str(data_file.pk),
    }
    assert selectors.datafile_check_access(user=user, ref=ref) == data_file
    assert selectors.datafile_read_json(user=user, ref=ref, max_bytes=1024) == {"values": [100, 50, 200, 70, 0.69]}


def test_a_new_pool_has_one_default_data_source_where_files_land(user, pool, data_file):
    sources = list(pool.descriptors.all())
    assert [(s.name, s.is_default) for s in sources] == [("default", True)]
    assert data_file.descriptor == sources[0]


# --- the access rule ------------------------------------------------------------------------------


def test_pool_shared_with_one_user_is_readable_by_them_and_not_by_a_third(
    user, other_user, third_user, pool, data_file
):
    services.datapool_share(user=user, pool=pool, email="BOB@example.com", permission=Permission.READ)
    ref = data_file.reference

    assert selectors.datafile_read_json(user=other_user, ref=ref, max_bytes=1024)["values"][0] == 100
    assert pool in selectors.datapool_list_readable(user=other_user)
    assert pool not in selectors.datapool_list_writable(user=other_user)

    # A pool one cannot read is answered as a missing one: nobody learns that it exists.
    assert error_of(selectors.datafile_check_access, user=third_user, ref=ref).code == "datapool:not-found"
    assert error_of(selectors.datafile_read_json, user=third_user, ref=ref, max_bytes=1024).status == 404
    assert pool not in selectors.datapool_list_readable(user=third_user)
    assert data_file not in selectors.datafile_list_json_readable(user=third_user)
    assert data_file in selectors.datafile_list_json_readable(user=other_user)


def test_read_share_cannot_write_but_write_share_can(user, other_user, pool, data_file):
    share = services.datapool_share(user=user, pool=pool, email=other_user.email, permission=Permission.READ)
    denied = error_of(services.datafile_create_from_json, user=other_user, pool=pool, name="r", payload={})
    assert (denied.code, denied.status) == ("datapool:forbidden", 403)
    assert error_of(services.datafile_delete, user=other_user, datafile=data_file).code == "datapool:forbidden"

    # Sharing again changes the permission of the one share.
    again = services.datapool_share(user=user, pool=pool, email=other_user.email, permission=Permission.WRITE)
    assert again.pk == share.pk
    assert selectors.datapool_access(user=other_user, pool=pool) == Access.WRITE
    assert pool in selectors.datapool_list_writable(user=other_user)
    written = services.datafile_create_from_json(user=other_user, pool=pool, name="result", payload={"sum": 1})
    assert written.pool == pool
    services.datafile_delete(user=other_user, datafile=data_file)
    assert not DataFile.objects.filter(pk=data_file.pk).exists()

    # Writers are not owners: sharing, visibility and deleting the pool stay with the owner.
    assert error_of(services.datapool_delete, user=other_user, pool=pool).code == "datapool:forbidden"
    assert error_of(services.datapool_update, user=other_user, pool=pool, visibility="PUBLIC").status == 403
    assert (
        error_of(services.datapool_share, user=other_user, pool=pool, email="x@example.com").code
        == "datapool:forbidden"
    )


def test_public_pool_is_readable_by_everyone_but_writable_by_its_owner_only(user, other_user, pool, data_file):
    assert error_of(selectors.datafile_check_access, user=other_user, ref=data_file.reference).status == 404
    services.datapool_update(user=user, pool=pool, visibility=Visibility.PUBLIC)

    assert selectors.datafile_read_json(user=other_user, ref=data_file.reference, max_bytes=1024)
    assert selectors.datapool_access(user=other_user, pool=pool) == Access.READ
    assert pool in selectors.datapool_list_readable(user=other_user)
    assert pool not in selectors.datapool_list_writable(user=other_user)
    assert error_of(services.datafile_delete, user=other_user, datafile=data_file).status == 403


def test_unsharing_takes_access_away(user, other_user, pool, data_file):
    share = services.datapool_share(user=user, pool=pool, email=other_user.email)
    assert selectors.datafile_check_access(user=other_user, ref=data_file.reference)
    services.datapool_unshare(user=user, pool=pool, share_id=share.pk)
    assert error_of(selectors.datafile_check_access, user=other_user, ref=data_file.reference).status == 404


def test_sharing_with_yourself_or_a_bad_permission_is_refused_an_unknown_address_invited(user, pool):
    invitation = services.datapool_share(user=user, pool=pool, email="nobody@example.com")
    assert (invitation.user, invitation.address) == (None, "nobody@example.com")
    assert error_of(services.datapool_share, user=user, pool=pool, email="not an address").code == "datapool:bad-email"
    assert error_of(services.datapool_share, user=user, pool=pool, email=user.email).code == "datapool:self"
    assert (
        error_of(services.datapool_share, user=user, pool=pool, email=user.email, permission="ADMIN").code
        == "datapool:bad-permission"
    )


# --- datafile_check_access error codes ------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        None,
        "a string",
        ["dataPoolId"],
        {},
        {"dataPoolId": str(uuid.uuid4()), "fileId": str(uuid.uuid4())},
        {"dataPoolId": "not-a-uuid", "dataSourceDescriptorId": str(uuid.uuid4()), "fileId": str(uuid.uuid4())},
        {"dataPoolId": 42, "dataSourceDescriptorId": str(uuid.uuid4()), "fileId": str(uuid.uuid4())},
    ],
)
def test_malformed_reference_is_400_bad_reference(user, ref):
    error = error_of(selectors.datafile_check_access, user=user, ref=ref)
    assert (error.code, error.status) == ("datapool:bad-reference", 400)
    assert "dataSourceDescriptorId" in error.message  # says what a reference looks like


def test_unknown_pool_file_or_mismatched_source_is_404(user, pool, data_file):
    other_pool = services.datapool_create(user=user, name="Other")
    refs = [
        {**data_file.reference, "dataPoolId": str(uuid.uuid4())},
        {**data_file.reference, "fileId": str(uuid.uuid4())},
        {**data_file.reference, "dataSourceDescriptorId": str(uuid.uuid4())},
        {**data_file.reference, "dataPoolId": str(other_pool.pk)},
    ]
    for ref in refs:
        error = error_of(selectors.datafile_check_access, user=user, ref=ref)
        assert (error.code, error.status) == ("datapool:not-found", 404), ref


def test_anonymous_callers_read_public_pools_only(user, pool, data_file):
    from django.contrib.auth.models import AnonymousUser

    assert error_of(selectors.datafile_check_access, user=AnonymousUser(), ref=data_file.reference).status == 404
    services.datapool_update(user=user, pool=pool, visibility=Visibility.PUBLIC)
    assert selectors.datafile_check_access(user=AnonymousUser(), ref=data_file.reference) == data_file


# --- datafile_read_json -----------------------------------------------------------------------------


def test_file_over_max_bytes_is_413_too_large(user, data_file):
    error = error_of(selectors.datafile_read_json, user=user, ref=data_file.reference, max_bytes=10)
    assert (error.code, error.status) == ("datapool:too-large", 413)
    assert "data.json" in error.message


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "UTF-8"),
        (b"values: [1, 2]", "line 1, column 1"),
        (b'{"values": [1, 2,]}', "line 1"),
        (b'{"x": NaN}', "NaN"),
    ],
)
def test_file_that_is_not_json_is_422_not_json(user, pool, content, hint):
    datafile = upload(user, pool, "data.bin", content)
    error = error_of(selectors.datafile_read_json, user=user, ref=datafile.reference, max_bytes=1024)
    assert (error.code, error.status) == ("datapool:not-json", 422)
    assert hint in error.message


def test_utf8_with_byte_order_mark_is_json(user, pool):
    datafile = upload(user, pool, "bom.json", b'\xef\xbb\xbf{"ok": true}')
    assert selectors.datafile_read_json(user=user, ref=datafile.reference, max_bytes=100) == {"ok": True}


def test_file_deleted_after_its_reference_was_checked_gives_a_clear_error(user, data_file):
    ref = data_file.reference
    assert selectors.datafile_check_access(user=user, ref=ref)  # e.g. when the job was submitted
    services.datafile_delete(user=user, datafile=data_file)

    error = error_of(selectors.datafile_read_json, user=user, ref=ref, max_bytes=1024)
    assert (error.code, error.status) == ("datapool:not-found", 404)
    assert "deleted" in error.message


def test_stored_content_gone_missing_gives_a_clear_error(user, data_file):
    default_storage.delete(data_file.file.name)  # e.g. removed from the bucket by hand
    error = error_of(selectors.datafile_read_json, user=user, ref=data_file.reference, max_bytes=1024)
    assert (error.code, error.status) == ("datapool:not-found", 404)
    assert "missing from storage" in error.message


def test_stored_content_larger_than_recorded_is_still_cut_at_max_bytes(user, data_file):
    # The recorded size is not trusted alone: reading stops one byte past the limit.
    DataFile.objects.filter(pk=data_file.pk).update(size=5)
    error = error_of(selectors.datafile_read_json, user=user, ref=data_file.reference, max_bytes=10)
    assert error.code == "datapool:too-large"


# --- datafile_create_from_json -----------------------------------------------------------------------


def test_create_from_json_into_an_existing_pool(user, pool):
    datafile = services.datafile_create_from_json(user=user, pool=pool, name="sum-job 1", payload={"sum": 420.69})
    assert datafile.pool == pool
    assert datafile.name == "sum-job 1.json"
    assert datafile.descriptor.is_default
    assert datafile.is_json
    assert selectors.datafile_read_json(user=user, ref=datafile.reference, max_bytes=1024) == {"sum": 420.69}
    assert pool.files.count() == 1


def test_create_from_json_into_a_new_pool_named_after_the_job(user):
    datafile = services.datafile_create_from_json(user=user, pool=None, name="sum-job 2", payload={"sum": 3})
    assert datafile.pool.name == "sum-job 2"
    assert datafile.pool.owner == user
    assert datafile.pool.visibility == Visibility.PRIVATE
    assert datafile.name == "sum-job 2.json"
    assert selectors.datafile_read_json(user=user, ref=datafile.reference, max_bytes=1024) == {"sum": 3}


def test_create_from_json_refuses_what_is_not_json_and_leaves_no_pool(user):
    error = error_of(services.datafile_create_from_json, user=user, pool=None, name="bad", payload={"x": float("nan")})
    assert (error.code, error.status) == ("datapool:not-json", 422)
    error = error_of(services.datafile_create_from_json, user=user, pool=None, name="bad", payload={"x": object()})
    assert error.code == "datapool:not-json"
    assert not DataPool.objects.exists()


def test_create_from_json_into_someone_elses_private_pool_is_not_found(other_user, pool):
    error = error_of(services.datafile_create_from_json, user=other_user, pool=pool, name="r", payload={})
    assert (error.code, error.status) == ("datapool:not-found", 404)


def test_json_picker_lists_only_json_files_the_user_can_read(user, other_user, pool, data_file):
    upload(user, pool, "notes.txt", b"hello")
    theirs = services.datapool_create(user=other_user, name="Theirs")
    upload(other_user, theirs, "secret.json", b"{}")
    assert list(selectors.datafile_list_json_readable(user=user)) == [data_file]
