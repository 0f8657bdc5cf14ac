"""Uploads through the page and the API: limits, invalid files, hostile names, storage clean-up."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from datapools import services
from datapools.models import DataFile
from planqk_portal.errors import ApplicationError
from tests.conftest import api_client_for
from tests.datapools.conftest import stored_files

pytestmark = pytest.mark.django_db

ONE_MB = 1024 * 1024


@pytest.fixture
def pool(user):
    return services.datapool_create(user=user, name="Uploads")


@pytest.fixture
def page_client(client, user):
    client.force_login(user)
    return client


def page_upload(client, pool, name: str, content: bytes, **extra: str):
    return client.post(
        f"/datapools/{pool.pk}/upload/", {"file": SimpleUploadedFile(name, content), **extra}, follow=True
    )


def api_upload(api_client, pool, file_name: str, content: bytes, **extra: str):
    return api_client.post(
        f"/api/v1/datapools/{pool.pk}/files/",
        {"file": SimpleUploadedFile(file_name, content), **extra},
        format="multipart",
    )


def page_messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_page_upload_stores_content_under_ids_with_size_and_sha256(page_client, pool, media_root):
    content = b'{"values": [1, 2, 3]}'
    response = page_upload(page_client, pool, "data.json", content)
    assert response.status_code == 200
    datafile = DataFile.objects.get()
    assert "Uploaded “data.json”" in page_messages(response)
    assert (datafile.name, datafile.size, datafile.content_type) == ("data.json", len(content), "application/json")
    assert datafile.sha256 == hashlib.sha256(content).hexdigest()
    assert datafile.file.name == f"datapools/{pool.pk}/{datafile.pk}"
    assert stored_files(media_root) == [media_root / "datapools" / str(pool.pk) / str(datafile.pk)]
    assert (media_root / datafile.file.name).read_bytes() == content
    assert datafile.reference_json in response.content.decode().replace("&quot;", '"')


@override_settings(PLANQK_DATAPOOL_MAX_UPLOAD_MB=1)
def test_oversized_page_upload_is_refused_with_a_message_and_nothing_is_stored(page_client, pool, media_root):
    response = page_upload(page_client, pool, "big.json", b" " * (ONE_MB + 1))
    assert response.status_code == 200
    assert "“big.json” is larger than the upload limit of 1 MB. Nothing was stored." in page_messages(response)
    assert not DataFile.objects.exists()
    assert stored_files(media_root) == []

    # Exactly at the limit is fine.
    page_upload(page_client, pool, "edge.bin", b"x" * ONE_MB)
    assert DataFile.objects.get().size == ONE_MB


@override_settings(PLANQK_DATAPOOL_MAX_UPLOAD_MB=1)
def test_oversized_api_upload_is_413_and_nothing_is_stored(api_client, pool, media_root):
    response = api_upload(api_client, pool, "big.bin", b"x" * (ONE_MB + 100))
    assert response.status_code == 413
    assert response.json()["code"] == "datapool:too-large"
    assert "1.0 MB" in response.json()["detail"]
    assert not DataFile.objects.exists()
    assert stored_files(media_root) == []


@override_settings(PLANQK_DATAPOOL_MAX_UPLOAD_MB=1)
def test_limit_holds_for_files_that_reach_the_service_without_the_request_guard(user, pool, media_root):
    from django.core.files.base import File

    big = File(io.BytesIO(b"x" * (ONE_MB + 1)), name="big.bin")
    with pytest.raises(ApplicationError) as error:
        services.datafile_upload(user=user, pool=pool, upload=big)
    assert error.value.code == "datapool:too-large"
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"values": [1, 2,', "is not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "is empty"),
    ],
)
def test_invalid_json_or_empty_upload_is_refused_and_nothing_is_stored(page_client, pool, media_root, content, message):
    response = page_upload(page_client, pool, "data.json", content)
    assert message in page_messages(response)
    assert "Nothing was stored" in page_messages(response)
    assert not DataFile.objects.exists()
    assert stored_files(media_root) == []


def test_invalid_json_api_upload_is_422(api_client, pool, media_root):
    response = api_upload(api_client, pool, "params.json", b"{round_off: false}")
    assert response.status_code == 422
    assert response.json()["code"] == "datapool:not-json"
    assert "line 1, column 2" in response.json()["detail"]
    assert stored_files(media_root) == []


def test_any_other_type_is_stored_as_it_is(api_client, pool):
    response = api_upload(api_client, pool, "circuit.qasm", b"OPENQASM 2.0;\nqreg q[2];\n")
    assert response.status_code == 201
    assert response.json()["content_type"] == "text/plain"  # as declared: .qasm has no known type
    assert response.json()["size"] == 25


@pytest.mark.parametrize(
    ("hostile", "kept"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/absolute/evil.json", "evil.json"),
        ("..", "file"),
        ('quo"te\r\nX-Injected: 1.json', 'quo"teX-Injected: 1.json'),
    ],
)
def test_path_traversal_names_never_reach_storage_paths(api_client, pool, media_root, hostile, kept):
    response = api_upload(api_client, pool, "upload.json", b"{}", name=hostile)
    assert response.status_code == 201, response.json()
    datafile = DataFile.objects.get()
    assert datafile.name == kept
    assert datafile.file.name == f"datapools/{pool.pk}/{datafile.pk}"
    assert stored_files(media_root) == [media_root / "datapools" / str(pool.pk) / str(datafile.pk)]

    download = api_client.get(response.json()["download_url"])
    assert download.status_code == 200
    disposition = download["Content-Disposition"]
    assert disposition.startswith("attachment;")
    for unsafe in ("/", "\\", "\n", "\r"):
        assert unsafe not in disposition
    assert disposition.count('"') == 2  # only the quotes around the name


def test_upload_name_from_the_multipart_header_is_cleaned_too(page_client, pool, media_root):
    page_upload(page_client, pool, "../../x/../data.json", b"{}")
    datafile = DataFile.objects.get()
    assert datafile.name == "data.json"
    assert datafile.file.name == f"datapools/{pool.pk}/{datafile.pk}"


def test_download_of_html_is_an_attachment_that_never_renders(page_client, pool):
    page_upload(page_client, pool, "page.html", b"<script>alert(1)</script>")
    datafile = DataFile.objects.get()
    response = page_client.get(f"/datapools/{pool.pk}/files/{datafile.pk}/download/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"


def test_non_ascii_names_download_with_an_encoded_header(api_client, pool):
    response = api_upload(api_client, pool, "x.json", b"[1]", name="Ergebnisse für Jörg.json")
    download = api_client.get(response.json()["download_url"], HTTP_ACCEPT="application/octet-stream")
    assert download.status_code == 200
    assert "filename*=utf-8''Ergebnisse%20f%C3%BCr%20J%C3%B6rg.json" in download["Content-Disposition"]
    assert json.loads(b"".join(download.streaming_content)) == [1]


@pytest.mark.django_db(transaction=True)
def test_deleting_file_source_and_pool_removes_stored_objects_on_commit(user, media_root):
    pool = services.datapool_create(user=user, name="To delete")
    results = services.datasource_create(user=user, pool=pool, name="results")
    api = api_client_for(user)
    first = api_upload(api, pool, "a.json", b"{}").json()
    api_upload(api, pool, "b.json", b"[]", data_source_id=str(results.pk))
    api_upload(api, pool, "c.json", b"1")
    assert len(stored_files(media_root)) == 3

    assert api.delete(f"/api/v1/datapools/{pool.pk}/files/{first['id']}/").status_code == 204
    assert len(stored_files(media_root)) == 2
    assert api.delete(f"/api/v1/datapools/{pool.pk}/data-sources/{results.pk}/").status_code == 204
    assert len(stored_files(media_root)) == 1
    assert api.delete(f"/api/v1/datapools/{pool.pk}/").status_code == 204
    assert stored_files(media_root) == []
    assert not (media_root / "datapools" / str(pool.pk)).exists()  # no empty folder left behind
    assert not DataFile.objects.exists()


def test_a_delete_that_rolls_back_keeps_the_stored_object(user, pool, media_root):
    from django.db import transaction

    datafile = services.datafile_create_from_json(user=user, pool=pool, name="keep", payload={})

    class Abort(Exception):
        pass

    def delete_then_fail() -> None:
        with transaction.atomic():
            services.datafile_delete(user=user, datafile=datafile)
            raise Abort

    with pytest.raises(Abort):
        delete_then_fail()
    assert DataFile.objects.filter(pk=datafile.pk).exists()
    assert (media_root / datafile.file.name).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_an_account_removes_its_stored_files(media_root):
    from tests.conftest import make_user

    owner = make_user("leaving@example.com")
    pool = services.datapool_create(user=owner, name="Mine")
    services.datafile_create_from_json(user=owner, pool=pool, name="a", payload=[1])
    assert len(stored_files(media_root)) == 1
    owner.delete()  # cascades through pools and files, past every service
    assert stored_files(media_root) == []
