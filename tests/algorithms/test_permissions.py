"""Who may see and use an implementation, on every road: pages, REST, Create Service, Create Job.

Private: only its owner. Shared: its owner and the named users. Public: anyone logged in.
Anyone else gets 404, exactly as for something that does not exist.
"""

from __future__ import annotations

import pytest
from django.test import Client

from algorithms.models import ServiceOrigin
from payments.testing import add_test_card
from services.models import Service
from tests.algorithms.conftest import make_algorithm, make_implementation
from tests.conftest import api_client_for, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def world():
    """An owner with a private, a shared and a public implementation; a friend it is shared with; a stranger."""
    owner, friend, stranger = (
        make_user("owner@example.com"),
        make_user("friend@example.com"),
        make_user("stranger@example.com"),
    )
    for person in (owner, friend, stranger):
        add_test_card(person)
    algorithm = make_algorithm(owner)
    implementations = {
        "private": make_implementation(owner, algorithm, name="private one", visibility="PRIVATE"),
        "shared": make_implementation(
            owner, algorithm, name="shared one", visibility="SHARED", shared_with=[friend.email]
        ),
        "public": make_implementation(owner, algorithm, name="public one", visibility="PUBLIC"),
    }
    return {"owner": owner, "friend": friend, "stranger": stranger, "algorithm": algorithm, **implementations}


# who sees which: (person, implementation) -> visible
VISIBLE = {
    ("owner", "private"): True,
    ("owner", "shared"): True,
    ("owner", "public"): True,
    ("friend", "private"): False,
    ("friend", "shared"): True,
    ("friend", "public"): True,
    ("stranger", "private"): False,
    ("stranger", "shared"): False,
    ("stranger", "public"): True,
}
CASES = sorted(VISIBLE)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("person", "which"), CASES)
def test_implementation_page(world, person, which):
    response = _client(world[person]).get(f"/algorithms/implementations/{world[which].pk}/")
    assert response.status_code == (200 if VISIBLE[person, which] else 404)
    if response.status_code == 200:
        assert world[which].name in response.content.decode()


@pytest.mark.parametrize("person", ["owner", "friend", "stranger"])
def test_algorithm_page_lists_only_what_the_user_may_see(world, person):
    page = _client(world[person]).get(f"/algorithms/{world['algorithm'].pk}/").content.decode()
    for which in ("private", "shared", "public"):
        assert (f'data-name="{world[which].name}"' in page) == VISIBLE[person, which], which


@pytest.mark.parametrize("person", ["owner", "friend", "stranger"])
def test_catalogue_counts_only_visible_implementations(world, person):
    page = _client(world[person]).get("/algorithms/").content.decode()
    count = sum(VISIBLE[person, which] for which in ("private", "shared", "public"))
    assert f"{count} implementation{'s' if count != 1 else ''}" in page


@pytest.mark.parametrize(("person", "which"), CASES)
def test_rest_detail_and_list(world, person, which):
    api = api_client_for(world[person])
    response = api.get(f"/api/v1/implementations/{world[which].pk}/")
    if VISIBLE[person, which]:
        assert response.status_code == 200
        assert response.json()["name"] == world[which].name
    else:
        assert response.status_code == 404
        assert response.json()["code"] == "implementation:not-found"
    listed = {item["id"] for item in api.get("/api/v1/implementations/").json()["results"]}
    assert (str(world[which].pk) in listed) == VISIBLE[person, which]
    files = api.get(f"/api/v1/implementations/{world[which].pk}/files/")
    assert files.status_code == (200 if VISIBLE[person, which] else 404)


@pytest.mark.parametrize(("person", "which"), CASES)
def test_create_service_page_road(world, person, which):
    file = world[which].files.get()
    response = _client(world[person]).post(f"/algorithms/files/{file.pk}/create-service/")
    made = Service.objects.filter(owner=world[person], origin__file=file)
    if VISIBLE[person, which]:
        assert response.status_code == 302
        service = made.get()
        assert response["Location"] == f"/algorithms/services/{service.pk}/build/"
        assert service.owner == world[person]
        assert service.lifecycle == "CREATED"  # not published
        assert list(service.plans.values_list("name", flat=True)) == ["Free"]
        assert ServiceOrigin.objects.get(service=service).implementation == world[which]
    else:
        assert response.status_code == 404
        assert not made.exists()


@pytest.mark.parametrize(("person", "which"), CASES)
def test_create_service_rest_road(world, person, which):
    file = world[which].files.get()
    api = api_client_for(world[person])
    url = f"/api/v1/implementations/{world[which].pk}/files/{file.pk}/create-service"
    response = api.post(url)
    if VISIBLE[person, which]:
        assert response.status_code == 201
        assert response.json()["lifecycle"] == "CREATED"
        again = api.post(url)  # the same service, not a second one
        assert again.status_code == 200
        assert again.json()["id"] == response.json()["id"]
    else:
        assert response.status_code == 404
        assert response.json()["code"] == "implementation:not-found"
        assert not Service.objects.filter(owner=world[person]).exists()


@pytest.mark.parametrize("person", ["owner", "friend", "stranger"])
def test_create_job_lists_only_usable_implementations(world, person):
    page = _client(world[person]).get("/jobs/new/").content.decode()
    assert 'data-testid="job-implementations"' in page
    for which in ("private", "shared", "public"):
        assert (f'data-testid="job-implementation-row" data-name="{world[which].name}"' in page) == VISIBLE[
            person, which
        ]


def test_private_file_of_another_user_is_404_through_a_guessed_file_id(world):
    # The file id of the owner's private implementation, posted under the public implementation's URL.
    private_file = world["private"].files.get()
    api = api_client_for(world["stranger"])
    response = api.post(f"/api/v1/implementations/{world['public'].pk}/files/{private_file.pk}/create-service")
    assert response.status_code == 404


@pytest.mark.parametrize("person", ["friend", "stranger"])
def test_only_the_owner_changes_an_implementation(world, person):
    api = api_client_for(world[person])
    response = api.patch(f"/api/v1/implementations/{world['public'].pk}/", {"name": "mine now"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "implementation:forbidden"
    assert _client(world[person]).get(f"/algorithms/implementations/{world['public'].pk}/edit/").status_code == 403
    upload = api.post(f"/api/v1/implementations/{world['public'].pk}/files/", {}, format="multipart")
    assert upload.status_code in (400, 403)
    # and a private one they cannot see stays 404 for changes too
    assert api.patch(f"/api/v1/implementations/{world['private'].pk}/", {"name": "x"}, format="json").status_code == 404


def test_sharing_is_shown_to_the_owner_only(world):
    owner_view = api_client_for(world["owner"]).get(f"/api/v1/implementations/{world['shared'].pk}/").json()
    friend_view = api_client_for(world["friend"]).get(f"/api/v1/implementations/{world['shared'].pk}/").json()
    assert owner_view["shared_with"] == ["friend@example.com"]
    assert friend_view["shared_with"] == []


def test_unsharing_takes_access_away(world):
    from algorithms import services

    services.implementation_update(implementation=world["shared"], user=world["owner"], shared_with=[])
    assert _client(world["friend"]).get(f"/algorithms/implementations/{world['shared'].pk}/").status_code == 404


def test_only_the_author_edits_an_algorithm(world):
    algorithm = world["algorithm"]
    assert _client(world["stranger"]).get(f"/algorithms/{algorithm.pk}/edit/").status_code == 403
    response = api_client_for(world["stranger"]).patch(
        f"/api/v1/algorithms/{algorithm.pk}/", {"summary": "x"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "algorithm:forbidden"
    ok = api_client_for(world["owner"]).patch(
        f"/api/v1/algorithms/{algorithm.pk}/", {"summary": "Adds up."}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["summary"] == "Adds up."


def test_pages_need_a_login(world):
    response = Client().get(f"/algorithms/implementations/{world['public'].pk}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert api_client_for(world["owner"]).get("/api/v1/algorithms/").status_code == 200
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/implementations/").status_code in (401, 403)


def test_the_build_page_of_another_users_service_is_404(world):
    file = world["public"].files.get()
    _client(world["friend"]).post(f"/algorithms/files/{file.pk}/create-service/")
    service = Service.objects.get(owner=world["friend"])
    assert _client(world["friend"]).get(f"/algorithms/services/{service.pk}/build/").status_code == 200
    assert _client(world["stranger"]).get(f"/algorithms/services/{service.pk}/build/").status_code == 404


def test_the_api_spec_block_shows_only_services_the_user_may_run(world, make_version):
    version = make_version(world["friend"], "qiskit_bell")
    url = f"/algorithms/job-api-spec/?service={version.service_id}"
    assert "Qiskit Bell pair" in _client(world["friend"]).get(url).content.decode()
    assert 'data-testid="api-spec"' not in _client(world["stranger"]).get(url).content.decode()
    page = _client(world["friend"]).get(f"/jobs/new/?service={version.service_id}").content.decode()
    assert 'data-testid="job-api-spec"' in page
    assert "Qiskit Bell pair" in page


def test_owner_edits_shares_and_deletes_through_the_pages(world):
    owner = _client(world["owner"])
    implementation = world["private"]
    response = owner.post(
        f"/algorithms/implementations/{implementation.pk}/edit/",
        {"name": "private one", "sdk": "QISKIT", "visibility": "SHARED", "shared_with": "stranger@example.com"},
    )
    assert response.status_code == 302
    assert _client(world["stranger"]).get(f"/algorithms/implementations/{implementation.pk}/").status_code == 200
    assert _client(world["friend"]).get(f"/algorithms/implementations/{implementation.pk}/").status_code == 404
    # Others cannot delete it, whether they see it or not.
    assert (
        _client(world["stranger"]).post(f"/algorithms/implementations/{implementation.pk}/delete/").status_code == 403
    )
    assert _client(world["friend"]).post(f"/algorithms/implementations/{implementation.pk}/delete/").status_code == 404
    assert owner.post(f"/algorithms/implementations/{implementation.pk}/delete/").status_code == 302
    assert owner.get(f"/algorithms/implementations/{implementation.pk}/").status_code == 404


def test_author_edits_the_algorithm_page(world):
    algorithm = world["algorithm"]
    response = _client(world["owner"]).post(
        f"/algorithms/{algorithm.pk}/edit/",
        {"name": algorithm.name, "summary": "New summary.", "problem_class": "OPTIMIZATION", "tags": "a, b"},
    )
    assert response.status_code == 302
    algorithm.refresh_from_db()
    assert (algorithm.summary, algorithm.problem_class) == ("New summary.", "OPTIMIZATION")
    assert sorted(algorithm.tags.values_list("name", flat=True)) == ["a", "b"]
    assert _client(world["friend"]).post(f"/algorithms/{algorithm.pk}/edit/", {"summary": "x"}).status_code == 403
