"""A hostile archive as an implementation file is refused exactly as it is for a service.

Every case of the services' hostile-archive table goes to ``POST /api/v1/services/`` and to
``POST /api/v1/implementations/{id}/files/``: the same status, the same code, the same message,
and nothing is stored. The page road shows the same message.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from algorithms.models import ImplementationFile
from payments.testing import add_test_card
from tests.algorithms.conftest import make_algorithm
from tests.conftest import api_client_for, make_user
from tests.services.helpers import make_zip
from tests.services.test_uploads import HOSTILE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

BAD_SPEC = {
    "spec that is not OpenAPI": make_zip({"openapi-spec.yml": b"openapi: 3.0.3\ninfo: {}\npaths: 12\n"}),
    "spec with an unusable input schema": make_zip(
        {
            "openapi-spec.yml": b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /:\n    post:\n"
            b"      requestBody:\n        content:\n          application/json:\n            schema:\n"
            b"              type: object\n              properties:\n                data: {type: nonsense}\n"
            b"      responses: {'201': {description: ok}}\n"
        }
    ),
}
CASES = {
    **{name: builder for name, (builder, _code) in HOSTILE.items()},
    **{k: (lambda v=v: v) for k, v in BAD_SPEC.items()},
}


@pytest.fixture
def owner():
    user = make_user("owner@example.com")
    add_test_card(user)
    return user


@pytest.fixture
def implementation(owner):
    from algorithms import services

    return services.implementation_create(algorithm=make_algorithm(owner), owner=owner, name="hostile")


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_archive_is_refused_exactly_as_for_a_service(case, owner, implementation, media):
    content = CASES[case]()
    api = api_client_for(owner)
    as_service = api.post(
        "/api/v1/services/",
        {"name": "hostile", "file": SimpleUploadedFile("user_code.zip", content)},
        format="multipart",
    )
    as_file = api.post(
        f"/api/v1/implementations/{implementation.pk}/files/",
        {"file": SimpleUploadedFile("user_code.zip", content)},
        format="multipart",
    )
    assert as_service.status_code >= 400, as_service.json()
    assert (as_file.status_code, as_file.json()) == (as_service.status_code, as_service.json())
    if case in HOSTILE:
        assert as_file.json()["code"] == HOSTILE[case][1]
    assert not ImplementationFile.objects.filter(implementation=implementation).exists()
    stored = media / "implementation-files"
    assert not stored.exists() or not any(stored.rglob("*.zip"))


@pytest.mark.parametrize("case", ["zip slip", "symlink", "zip bomb"])
def test_the_page_shows_the_services_message(case, owner, implementation):
    from planqk_portal.errors import ApplicationError
    from services import uploads

    content = HOSTILE[case][0]()
    with pytest.raises(ApplicationError) as refused:
        uploads.inspect_archive(SimpleUploadedFile("user_code.zip", content))
    client = Client()
    client.force_login(owner)
    response = client.post(
        f"/algorithms/implementations/{implementation.pk}/files/",
        {"file": SimpleUploadedFile("user_code.zip", content)},
        follow=True,
    )
    assert refused.value.message in [str(m) for m in response.context["messages"]]
    assert not implementation.files.exists()


def test_a_good_archive_becomes_version_1_then_2(owner, implementation):
    from planqk_samples import sample_zip

    api = api_client_for(owner)
    for expected in (1, 2):
        response = api.post(
            f"/api/v1/implementations/{implementation.pk}/files/",
            {"file": SimpleUploadedFile("user_code.zip", sample_zip("sum"))},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        assert response.json()["version"] == expected
        assert response.json()["is_runnable"] is True
    versions = [f["version"] for f in api.get(f"/api/v1/implementations/{implementation.pk}/files/").json()]
    assert versions == [2, 1]  # the old version stays
