"""The Data Pools pages: creating, sharing, confirming deletes, empty states, pagination."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from datapools import services
from datapools.models import DataFile, DataPool, DataPoolShare, DataSourceDescriptor, Visibility
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def login_as(client, who):
    client.logout()
    client.force_login(who)
    return client


def text_of(response) -> str:
    return response.content.decode()


def test_empty_list_says_what_to_do_next(alice):
    response = alice.get("/datapools/")
    assert response.status_code == 200
    assert "No data pools yet. Create one above" in text_of(response)
    assert "Nobody has shared a data pool with you yet" in text_of(alice.get("/datapools/?show=shared"))


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/datapools/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_create_pool_opens_it_with_an_upload_form_and_empty_state(alice):
    response = alice.post("/datapools/", {"name": "Sum example", "description": "inputs"}, follow=True)
    pool = DataPool.objects.get()
    assert response.redirect_chain[-1][0] == f"/datapools/{pool.pk}/"
    page = text_of(response)
    assert "Upload a file" in page
    assert "No files yet. Upload a JSON file above" in page
    assert "At most 100 MB" in page


def test_create_pool_without_a_name_shows_the_error(alice):
    response = alice.post("/datapools/", {"name": "  "})
    assert response.status_code == 200
    assert "This field is required" in text_of(response)
    assert not DataPool.objects.exists()


def test_share_by_email_in_the_page_gives_that_user_read_access_only(alice, user, other_user):
    pool = services.datapool_create(user=user, name="Shared pool")
    datafile = services.datafile_create_from_json(user=user, pool=pool, name="data", payload={"values": [1]})
    carol = make_user("carol@example.com")

    response = alice.post(f"/datapools/{pool.pk}/sharing/", {"email": "bob@example.com", "permission": "READ"})
    assert response.status_code == 302
    assert DataPoolShare.objects.get().user == other_user
    unknown = alice.post(f"/datapools/{pool.pk}/sharing/", {"email": "nobody@example.com", "permission": "READ"})
    assert unknown.status_code == 302  # an invitation, answered like a share (tests/datapools/test_invitations.py)

    bob = login_as(alice, other_user)
    page = text_of(bob.get(f"/datapools/{pool.pk}/"))
    assert datafile.reference_json.replace('"', "&quot;") in page
    assert "Upload a file" not in page  # read only
    assert bob.get(f"/datapools/{pool.pk}/files/{datafile.pk}/download/").status_code == 200
    assert bob.get(f"/datapools/{pool.pk}/files/{datafile.pk}/delete/").status_code == 403
    assert bob.get(f"/datapools/{pool.pk}/sharing/").status_code == 403
    assert "Shared pool" in text_of(bob.get("/datapools/?show=shared"))

    carol_client = login_as(bob, carol)
    # A pool carol cannot read looks exactly like one that does not exist.
    denied = carol_client.get(f"/datapools/{pool.pk}/")
    assert denied.status_code == 404
    assert "does not exist" in text_of(denied)
    assert carol_client.get(f"/datapools/{pool.pk}/files/{datafile.pk}/download/").status_code == 404
    assert "Shared pool" not in text_of(carol_client.get("/datapools/"))


def test_write_share_sees_the_upload_form_and_can_delete_files(alice, user, other_user):
    pool = services.datapool_create(user=user, name="Team pool")
    services.datapool_share(user=user, pool=pool, email=other_user.email, permission="WRITE")
    bob = login_as(alice, other_user)
    page = text_of(bob.get(f"/datapools/{pool.pk}/"))
    assert "Upload a file" in page
    assert "Sharing" not in page  # the owner's business
    bob.post(f"/datapools/{pool.pk}/upload/", {"file": ContentFile(b"{}", name="b.json")})
    datafile = DataFile.objects.get()
    assert datafile.created_by == other_user
    assert bob.post(f"/datapools/{pool.pk}/files/{datafile.pk}/delete/").status_code == 302
    assert not DataFile.objects.exists()


def test_public_pool_is_listed_for_others_and_read_only(alice, user, other_user):
    pool = services.datapool_create(user=user, name="Open data")
    alice.post(f"/datapools/{pool.pk}/sharing/", {"action": "visibility", "visibility": "PUBLIC"})
    pool.refresh_from_db()
    assert pool.visibility == Visibility.PUBLIC
    bob = login_as(alice, other_user)
    assert "Open data" in text_of(bob.get("/datapools/?show=public"))
    page = bob.get(f"/datapools/{pool.pk}/")
    assert page.status_code == 200
    assert "Upload a file" not in text_of(page)
    assert bob.post(f"/datapools/{pool.pk}/upload/", {"file": ContentFile(b"{}", name="x.json")}).status_code == 403


def test_every_delete_asks_first(alice, user):
    pool = services.datapool_create(user=user, name="Doomed")
    source = services.datasource_create(user=user, pool=pool, name="results")
    datafile = services.datafile_create_from_json(user=user, pool=pool, name="r", payload={})

    for url, title in [
        (f"/datapools/{pool.pk}/files/{datafile.pk}/delete/", "Delete file “r.json”?"),
        (f"/datapools/{pool.pk}/sources/{source.pk}/delete/", "Delete data source “results”?"),
        (f"/datapools/{pool.pk}/delete/", "Delete data pool “Doomed”?"),
    ]:
        response = alice.get(url)
        assert response.status_code == 200
        assert title in text_of(response)
        assert 'data-testid="confirm"' in text_of(response)
    assert DataFile.objects.exists()  # nothing deleted by looking

    alice.post(f"/datapools/{pool.pk}/files/{datafile.pk}/delete/")
    assert not DataFile.objects.exists()
    alice.post(f"/datapools/{pool.pk}/sources/{source.pk}/delete/")
    assert not DataSourceDescriptor.objects.filter(pk=source.pk).exists()
    response = alice.post(f"/datapools/{pool.pk}/delete/", follow=True)
    assert "Data pool “Doomed” deleted." in text_of(response)
    assert not DataPool.objects.exists()


def test_default_data_source_cannot_be_deleted(alice, user):
    pool = services.datapool_create(user=user, name="Keep default")
    default = pool.descriptors.get()
    response = alice.post(f"/datapools/{pool.pk}/sources/{default.pk}/delete/", follow=True)
    assert "The default data source cannot be deleted" in text_of(response)
    assert DataSourceDescriptor.objects.filter(pk=default.pk).exists()


def test_data_sources_filter_the_file_list_and_htmx_gets_only_the_list(alice, user):
    pool = services.datapool_create(user=user, name="Grouped")
    alice.post(f"/datapools/{pool.pk}/sources/", {"name": "results"})
    results = DataSourceDescriptor.objects.get(name="results")
    services.datafile_create_from_json(user=user, pool=pool, name="input", payload={})
    alice.post(
        f"/datapools/{pool.pk}/upload/", {"source": str(results.pk), "file": ContentFile(b"[]", name="out.json")}
    )
    assert DataFile.objects.get(name="out.json").descriptor == results

    page = text_of(alice.get(f"/datapools/{pool.pk}/?source={results.pk}"))
    assert "out.json" in page
    assert "input.json" not in page
    fragment = alice.get(
        f"/datapools/{pool.pk}/?source={results.pk}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="file-list"
    )
    assert "<html" not in text_of(fragment)
    assert "out.json" in text_of(fragment)


def test_file_list_and_pool_list_are_paginated(alice, user):
    pool = services.datapool_create(user=user, name="Many files")
    for number in range(27):
        services.datapool_create(user=user, name=f"pool {number:02}")
        services.datafile_upload(user=user, pool=pool, upload=ContentFile(b"{}", name=f"f{number:02}.json"))
    first = text_of(alice.get(f"/datapools/{pool.pk}/"))
    assert first.count('data-testid="file"') == 25
    assert "Page 1 of 2" in first
    assert text_of(alice.get(f"/datapools/{pool.pk}/?page=2")).count('data-testid="file"') == 2
    pools = text_of(alice.get("/datapools/"))
    assert pools.count('data-testid="pool-card"') == 20
    assert "Page 1 of 2" in pools


def test_edit_name_and_description(alice, user, other_user):
    pool = services.datapool_create(user=user, name="Old")
    alice.post(f"/datapools/{pool.pk}/edit/", {"name": "New", "description": "Now described"})
    pool.refresh_from_db()
    assert (pool.name, pool.description) == ("New", "Now described")
    services.datapool_share(user=user, pool=pool, email=other_user.email, permission="WRITE")
    assert login_as(alice, other_user).get(f"/datapools/{pool.pk}/edit/").status_code == 403


def test_unknown_pool_is_a_404_page(alice):
    response = alice.get("/datapools/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert "does not exist" in text_of(response)
