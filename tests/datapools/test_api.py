"""The REST API under /api/v1/datapools/: the same access rule as the pages and the selectors."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datapools.models import DataFile, DataPool
from tests.conftest import api_client_for, make_user, token_for

pytestmark = pytest.mark.django_db
BASE = "/api/v1/datapools/"


@pytest.fixture
def bob_api(other_user):
    return api_client_for(other_user)


@pytest.fixture
def carol_api(db):
    return api_client_for(make_user("carol@example.com"))


def create_pool(api, name: str = "Sum example", **extra: str) -> dict:
    response = api.post(BASE, {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def upload(api, pool_id: str, name: str, content: bytes, **extra: str):
    return api.post(f"{BASE}{pool_id}/files/", {"file": SimpleUploadedFile(name, content), **extra}, format="multipart")


def test_create_upload_list_get_and_download(api_client):
    pool = create_pool(api_client, description="inputs for the sum service")
    assert pool["access"] == "OWNER"
    assert pool["visibility"] == "PRIVATE"
    assert pool["owner"] == "alice@example.com"
    assert pool["file_count"] == 0
    assert pool["default_data_source_id"]

    created = upload(api_client, pool["id"], "data.json", b'{"values": [1, 2]}')
    assert created.status_code == 201
    body = created.json()
    assert body["reference"] == {
        "dataPoolId": pool["id"],
        "dataSourceDescriptorId": pool["default_data_source_id"],
        "fileId": body["id"],
    }
    assert body["data_source_name"] == "default"

    listing = api_client.get(BASE).json()
    assert listing["count"] == 1
    assert listing["results"][0]["file_count"] == 1
    files = api_client.get(f"{BASE}{pool['id']}/files/").json()
    assert [f["name"] for f in files["results"]] == ["data.json"]
    assert api_client.get(f"{BASE}{pool['id']}/files/{body['id']}/").json()["sha256"] == body["sha256"]
    download = api_client.get(body["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b'{"values": [1, 2]}'


def test_data_sources_group_files(api_client):
    pool = create_pool(api_client)
    source = api_client.post(f"{BASE}{pool['id']}/data-sources/", {"name": "results"}, format="json").json()
    assert source["is_default"] is False
    duplicate = api_client.post(f"{BASE}{pool['id']}/data-sources/", {"name": "Results"}, format="json")
    assert (duplicate.status_code, duplicate.json()["code"]) == (400, "datapool:source-exists")

    upload(api_client, pool["id"], "a.json", b"{}")
    in_results = upload(api_client, pool["id"], "b.json", b"{}", data_source_id=source["id"]).json()
    assert in_results["reference"]["dataSourceDescriptorId"] == source["id"]
    only = api_client.get(f"{BASE}{pool['id']}/files/", {"data_source": source["id"]}).json()
    assert [f["name"] for f in only["results"]] == ["b.json"]
    sources = api_client.get(f"{BASE}{pool['id']}/data-sources/").json()
    assert [(s["name"], s["file_count"]) for s in sources] == [("default", 1), ("results", 1)]

    default = pool["default_data_source_id"]
    refused = api_client.delete(f"{BASE}{pool['id']}/data-sources/{default}/")
    assert (refused.status_code, refused.json()["code"]) == (400, "datapool:default-source")


def test_pool_shared_with_one_user_is_readable_by_them_and_not_by_a_third(api_client, bob_api, carol_api):
    pool = create_pool(api_client)
    file_id = upload(api_client, pool["id"], "data.json", b"{}").json()["id"]
    share = api_client.post(f"{BASE}{pool['id']}/shares/", {"email": "bob@example.com"}, format="json")
    assert share.status_code == 201
    assert share.json()["permission"] == "READ"

    assert bob_api.get(f"{BASE}{pool['id']}/").json()["access"] == "READ"
    assert bob_api.get(f"{BASE}{pool['id']}/files/{file_id}/download").status_code == 200
    assert [p["id"] for p in bob_api.get(BASE, {"show": "shared"}).json()["results"]] == [pool["id"]]
    assert bob_api.get(BASE, {"show": "writable"}).json()["count"] == 0
    refused = upload(bob_api, pool["id"], "mine.json", b"{}")
    assert (refused.status_code, refused.json()["code"]) == (403, "datapool:forbidden")
    assert bob_api.delete(f"{BASE}{pool['id']}/files/{file_id}/").status_code == 403
    assert bob_api.get(f"{BASE}{pool['id']}/shares/").status_code == 403  # who else: the owner's business

    for path in ("", "files/", f"files/{file_id}/", f"files/{file_id}/download", "data-sources/"):
        response = carol_api.get(f"{BASE}{pool['id']}/{path}")
        # A pool carol cannot read answers exactly as a missing one: she cannot tell it exists.
        assert (response.status_code, response.json()["code"]) == (404, "datapool:not-found"), path
    assert carol_api.get(BASE).json()["count"] == 0


def test_write_share_uploads_and_deletes_but_does_not_administer(api_client, bob_api):
    pool = create_pool(api_client)
    api_client.post(f"{BASE}{pool['id']}/shares/", {"email": "bob@example.com", "permission": "WRITE"}, format="json")
    created = upload(bob_api, pool["id"], "from-bob.json", b"[1]")
    assert created.status_code == 201
    assert DataFile.objects.get().created_by.email == "bob@example.com"
    assert bob_api.delete(f"{BASE}{pool['id']}/files/{created.json()['id']}/").status_code == 204
    assert bob_api.patch(f"{BASE}{pool['id']}/", {"visibility": "PUBLIC"}, format="json").status_code == 403
    assert bob_api.delete(f"{BASE}{pool['id']}/").status_code == 403
    assert DataPool.objects.filter(pk=pool["id"]).exists()


def test_public_pool_is_readable_and_listed_for_everyone(api_client, carol_api):
    pool = create_pool(api_client)
    file_id = upload(api_client, pool["id"], "data.json", b"{}").json()["id"]
    assert carol_api.get(f"{BASE}{pool['id']}/").status_code == 404
    patched = api_client.patch(f"{BASE}{pool['id']}/", {"visibility": "PUBLIC"}, format="json")
    assert patched.json()["visibility"] == "PUBLIC"

    assert carol_api.get(f"{BASE}{pool['id']}/").json()["access"] == "READ"
    assert carol_api.get(f"{BASE}{pool['id']}/files/{file_id}/download").status_code == 200
    assert [p["id"] for p in carol_api.get(BASE, {"show": "public"}).json()["results"]] == [pool["id"]]
    assert upload(carol_api, pool["id"], "x.json", b"{}").status_code == 403


def test_unshare_and_leave(api_client, bob_api):
    pool = create_pool(api_client)
    share = api_client.post(f"{BASE}{pool['id']}/shares/", {"email": "bob@example.com"}, format="json").json()
    assert bob_api.delete(f"{BASE}{pool['id']}/shares/{share['id']}/").status_code == 204  # bob leaves
    assert bob_api.get(f"{BASE}{pool['id']}/").status_code == 404
    share = api_client.post(f"{BASE}{pool['id']}/shares/", {"email": "bob@example.com"}, format="json").json()
    assert api_client.get(f"{BASE}{pool['id']}/shares/").json()[0]["email"] == "bob@example.com"
    assert api_client.delete(f"{BASE}{pool['id']}/shares/{share['id']}/").status_code == 204
    assert bob_api.get(f"{BASE}{pool['id']}/").status_code == 404


def test_bad_input_gets_clear_json_errors(api_client):
    assert api_client.post(BASE, {"name": ""}, format="json").json()["code"] == "invalid"
    assert api_client.post(BASE, {"name": "x", "visibility": "SECRET"}, format="json").status_code == 400
    assert api_client.get(BASE, {"show": "everything"}).status_code == 400
    missing = api_client.get(f"{BASE}00000000-0000-0000-0000-000000000000/")
    assert (missing.status_code, missing.json()["code"]) == (404, "datapool:not-found")
    pool = create_pool(api_client)
    no_file = api_client.post(f"{BASE}{pool['id']}/files/", {}, format="multipart")
    assert no_file.status_code == 400
    assert "file" in no_file.json()["detail"]
    not_an_address = api_client.post(f"{BASE}{pool['id']}/shares/", {"email": "ghost"}, format="json")
    assert not_an_address.status_code == 400
    wrong_source = upload(
        api_client, pool["id"], "a.json", b"{}", data_source_id="00000000-0000-0000-0000-000000000000"
    )
    assert wrong_source.status_code == 404


def test_read_scope_token_can_read_but_not_upload(user, client):
    pool = create_pool(api_client_for(user))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user, scopes=['read'])}"}
    assert client.get(BASE, **headers).status_code == 200
    response = client.post(f"{BASE}{pool['id']}/files/", {"file": SimpleUploadedFile("a.json", b"{}")}, **headers)
    assert response.status_code == 403
    assert not DataFile.objects.exists()


def test_anonymous_requests_are_401(client):
    response = client.get(BASE)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
