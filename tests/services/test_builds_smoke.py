"""A build ends with a smoke test: the code imports, has run(), and the spec's example input runs (issue 16)."""

from __future__ import annotations

import pytest

from planqk_portal.errors import ApplicationError
from services import builds, services
from services.models import BuildStatus

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
    from services.models import Service

    assert Service.objects.get(pk=response.json()["id"]).skip_example_run is True
