"""A build ends with a smoke test: the code imports, has run(), and the spec's example input runs (issue 16)."""

from __future__ import annotations

import re

import pytest

from planqk_portal.errors import ApplicationError
from services import builds, services
from services.models import BuildStatus, Service

from .helpers import build_log, make_zip, upload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]

SPEC_WITH_EXAMPLE = b"""openapi: 3.0.3
info: {title: t, version: "1.0"}
paths:
  /:
    post:
      requestBody:
        content:
          application/json:
            example: {data: {values: [1, 2]}, params: {}}
      responses:
        "201": {description: created}
"""

SUMS = b"def run(data=None, params=None):\n    return {'sum': sum(data['values'])}\n"
FAILS_ON_EXAMPLE = b"def run(data=None, params=None):\n    raise ValueError('no hardware token')\n"


def build(user, name: str, files: dict[str, bytes], **fields):
    archive = make_zip({"openapi-spec.yml": SPEC_WITH_EXAMPLE, **files})
    service = services.service_create(owner=user, name=name, archive=archive, **fields)
    version = service.versions.get()
    builds.service_version_build(version_id=version.id)
    version.refresh_from_db()
    return service, version


def test_a_version_whose_example_runs_is_ready_and_the_log_shows_each_phase(user):
    _, version = build(user, "sums", {"src/program.py": SUMS})
    log = build_log(version)
    assert version.status == BuildStatus.READY, log
    assert "src.program imports and defines run" in log
    assert "the API spec's example input runs" in log
    assert "<== smoke test done in" in log
    assert "==> smoke test" in log


def test_a_version_whose_code_cannot_import_fails_and_cannot_be_published(user):
    program = b"import no_such_module_anywhere\n\ndef run(data=None, params=None):\n    return {}\n"
    service, version = build(user, "noimport", {"src/program.py": program})
    assert version.status == BuildStatus.FAILED
    assert version.build_error_code == "build:user:smoke-import"
    assert "no_such_module_anywhere" in build_log(version)
    assert "cannot be imported" in version.build_error
    with pytest.raises(ApplicationError):
        services.service_publish_internal(service=service)


def test_a_version_whose_example_fails_is_failed_with_the_reason(user):
    _, version = build(user, "badexample", {"src/program.py": FAILS_ON_EXAMPLE})
    assert version.status == BuildStatus.FAILED
    assert version.build_error_code == "build:user:smoke-example"
    assert "no hardware token" in version.build_error
    assert "no hardware token" in build_log(version)


def test_the_provider_can_skip_the_example_run(user):
    _, version = build(user, "skipped", {"src/program.py": FAILS_ON_EXAMPLE}, skip_example_run=True)
    assert version.status == BuildStatus.READY, build_log(version)
    assert "the example run is skipped" in build_log(version)


def test_the_api_takes_the_skip_example_run_field(api_client):
    data = make_zip({"openapi-spec.yml": SPEC_WITH_EXAMPLE, "src/program.py": FAILS_ON_EXAMPLE})
    response = api_client.post(
        "/api/v1/services/",
        {"name": "hw", "file": upload(data), "skip_example_run": "true"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert Service.objects.get(pk=response.json()["id"]).skip_example_run is True


def _new_version_from_the_page(client, service, files: dict[str, bytes], *, ticked: bool):
    """The provider uploads a version with the new-version page (the box ticked or not) and it builds."""
    post = {"file": upload(make_zip({"openapi-spec.yml": SPEC_WITH_EXAMPLE, **files}))}
    if ticked:
        post["skip_example_run"] = "on"
    response = client.post(f"/services/{service.pk}/versions/new/", post)
    assert response.status_code == 302, response.content.decode()[:2000]
    version = service.versions.order_by("-created_at").first()
    builds.service_version_build(version_id=version.id)
    version.refresh_from_db()
    return version


def _box(page: str) -> str:
    match = re.search(r'<input[^>]*name="skip_example_run"[^>]*>', page)
    assert match, "the new-version page has no skip_example_run box"
    return match.group(0)


def test_the_new_version_page_offers_the_box_with_the_services_choice(client, user):
    service, _ = build(user, "boxshown", {"src/program.py": SUMS})
    client.force_login(user)
    assert "checked" not in _box(client.get(f"/services/{service.pk}/versions/new/").content.decode())
    Service.objects.filter(pk=service.pk).update(skip_example_run=True)
    assert "checked" in _box(client.get(f"/services/{service.pk}/versions/new/").content.decode())


def test_a_new_version_with_a_failing_example_and_the_box_ticked_is_ready(client, user):
    service, first = build(user, "hwpage", {"src/program.py": SUMS})
    assert first.status == BuildStatus.READY
    client.force_login(user)
    version = _new_version_from_the_page(client, service, {"src/program.py": FAILS_ON_EXAMPLE}, ticked=True)
    assert version.status == BuildStatus.READY, build_log(version)
    assert "the example run is skipped" in build_log(version)


def test_a_new_version_with_a_failing_example_and_the_box_unticked_fails(client, user):
    # The service skipped the example so far; the provider unticks the box for this version.
    service, _ = build(user, "hwpage2", {"src/program.py": SUMS}, skip_example_run=True)
    client.force_login(user)
    version = _new_version_from_the_page(client, service, {"src/program.py": FAILS_ON_EXAMPLE}, ticked=False)
    assert version.status == BuildStatus.FAILED
    assert version.build_error_code == "build:user:smoke-example"
    assert "no hardware token" in version.build_error


def test_the_versions_api_sets_or_keeps_the_choice(api_client, user):
    service, _ = build(user, "hwapi", {"src/program.py": SUMS})
    data = make_zip({"openapi-spec.yml": SPEC_WITH_EXAMPLE, "src/program.py": FAILS_ON_EXAMPLE})
    url = f"/api/v1/services/{service.pk}/versions/"
    response = api_client.post(url, {"file": upload(data), "skip_example_run": "true"}, format="multipart")
    assert response.status_code == 201, response.json()
    builds.service_version_build(version_id=response.json()["id"])
    version = service.versions.get(pk=response.json()["id"])
    assert version.status == BuildStatus.READY, build_log(version)
    # Not given: the service's choice stays as it is (skipped), so the next failing example is READY too.
    response = api_client.post(url, {"file": upload(data)}, format="multipart")
    assert response.status_code == 201, response.json()
    builds.service_version_build(version_id=response.json()["id"])
    assert service.versions.get(pk=response.json()["id"]).status == BuildStatus.READY
    response = api_client.post(url, {"file": upload(data), "skip_example_run": "false"}, format="multipart")
    builds.service_version_build(version_id=response.json()["id"])
    assert service.versions.get(pk=response.json()["id"]).status == BuildStatus.FAILED
    # Something that is not a boolean is a 400 naming the field, not a 500.
    response = api_client.post(url, {"file": upload(data), "skip_example_run": "perhaps"}, format="multipart")
    assert response.status_code == 400
    assert "skip_example_run" in str(response.json())
