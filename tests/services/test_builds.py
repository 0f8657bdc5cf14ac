"""Builds with a real Celery worker on the local runtime: READY, FAILED with pip's reason, cancel, retry, versions."""

from __future__ import annotations

import time
import uuid

import pytest

from planqk_samples import sample_zip
from services import selectors, services
from services.models import BuildStatus, ServiceVersion

from .helpers import PROGRAM, build_log, make_zip, upload, wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("shared_media")]

FINAL = {BuildStatus.READY, BuildStatus.FAILED, BuildStatus.CANCELLED}


def requirement_set_of_its_own(purpose: str) -> str:
    """Requirements whose environment no other build shares, needing no network.

    Comments do not count (the key is the canonical list): a requirement whose marker holds on no
    machine makes the list differ and installs nothing.
    """
    return f'planqk-{purpose}-{uuid.uuid4().hex[:12]}; platform_release == "planqk-never"\n'


def wait_for_log(version: ServiceVersion, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = build_log(version)
        if text in log:
            return log
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared in the build log:\n{build_log(version)}")


@pytest.mark.slow
def test_qiskit_sample_uploaded_through_the_api_becomes_ready(celery_worker, api_client, user):
    response = api_client.post(
        "/api/v1/services/",
        {"name": "bell", "file": upload(sample_zip("qiskit_bell")), "quantum_backend": "NONE"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    version = ServiceVersion.objects.get(pk=body["latest_version"]["id"])
    wait_for_status(version, FINAL, timeout=1200, worker=celery_worker)
    assert version.status == BuildStatus.READY, build_log(version)
    detail = api_client.get(f"/api/v1/services/{body['id']}/versions/{version.pk}/").json()
    assert detail["status"] == "READY"
    assert detail["is_callable"] is True
    assert detail["build_started_at"]
    assert detail["build_ended_at"]
    log = api_client.get(f"/api/v1/services/{body['id']}/versions/{version.pk}/logs").json()
    assert log["final"] is True
    text = "".join(chunk["text"] for chunk in log["chunks"])
    # A first build installs qiskit; a later one (same requirements) reuses that environment.
    assert "pip install -r requirements.txt" in text or "reusing the environment" in text
    assert "is READY" in text
    assert "qiskit" in version.requirements
    service = api_client.get(f"/api/v1/services/{body['id']}/").json()
    assert service["gateway_url"].endswith(f"/gateway/{user.uuid}/bell/1.0.0/")
    assert service["published_version"]["id"] == str(version.pk)


def test_requirement_that_does_not_exist_fails_with_pips_message(celery_worker, user):
    missing = f"planqk-no-such-package-{uuid.uuid4().hex[:8]}"
    service = services.service_create(
        owner=user, name="broken", archive=make_zip({"requirements.txt": f"{missing}==0.0.1\n".encode()})
    )
    version = wait_for_status(service.versions.get(), FINAL, worker=celery_worker)
    assert version.status == BuildStatus.FAILED
    assert version.build_error_code == "build:user:requirements"
    assert f"No matching distribution found for {missing}" in version.build_error
    assert f"No matching distribution found for {missing}" in build_log(version)
    assert selectors.service_version_latest_callable(service=service) is None


def test_cancel_a_running_build_then_retry_it(celery_worker, user, env_lock):
    requirements = requirement_set_of_its_own("cancel")
    with env_lock(requirements):
        service = services.service_create(
            owner=user, name="cancel-me", archive=make_zip({"requirements.txt": requirements.encode()})
        )
        version = service.versions.get()
        wait_for_log(version, "waiting")  # building, and stuck behind the lock we hold
        version.refresh_from_db()
        assert version.status == BuildStatus.BUILDING
        services.service_version_cancel(version=version)
        wait_for_status(version, FINAL, worker=celery_worker)
    assert version.status == BuildStatus.CANCELLED
    assert "cancelled" in build_log(version).lower()

    services.service_version_retry(version=version)
    version = wait_for_status(version, FINAL, worker=celery_worker)
    assert version.status == BuildStatus.READY, build_log(version)
    assert "waiting" not in build_log(version)  # a retry starts a fresh log


def test_new_version_builds_beside_the_callable_one_and_replaces_it_when_ready(celery_worker, user, env_lock):
    service = services.service_create(owner=user, name="evolving", archive=sample_zip("sum"))
    first = wait_for_status(service.versions.get(), FINAL, worker=celery_worker)
    assert first.status == BuildStatus.READY, build_log(first)
    service = services.service_publish_internal(service=service)

    requirements = requirement_set_of_its_own("version-2")
    with env_lock(requirements):
        second = services.service_version_create(
            service=service,
            user=user,
            archive=make_zip({"requirements.txt": requirements.encode(), "src/program.py": PROGRAM}),
        )
        wait_for_log(second, "waiting")
        service.refresh_from_db()
        # While 1.0.1 builds, callers keep 1.0.0.
        assert service.published_version == first
        assert selectors.service_version_latest_callable(service=service) == first
        assert selectors.service_version_callable(service=service, version="1.0.1") is None
    second = wait_for_status(second, FINAL, worker=celery_worker)
    assert second.status == BuildStatus.READY, build_log(second)
    service.refresh_from_db()
    first.refresh_from_db()
    assert service.published_version == second
    assert first.is_callable  # older versions stay callable until unpublished
    assert selectors.service_version_callable(service=service, version="1.0.0") == first
    services.service_version_unpublish(version=first)
    assert selectors.service_version_callable(service=service, version="1.0.0") is None


def test_environment_yml_without_requirements_installs_its_pip_dependencies(celery_worker, user):
    environment = b"""name: planqk-service
dependencies:
  - python=3.11
  - numpy=1.26
  - pip
  - pip:
      - six==1.16.0
"""
    service = services.service_create(
        owner=user,
        name="conda",
        archive=make_zip({"src/program.py": PROGRAM, "environment.yml": environment}, base=False),
    )
    version = wait_for_status(service.versions.get(), FINAL, timeout=600, worker=celery_worker)
    assert version.status == BuildStatus.READY, build_log(version)
    assert version.requirements == "six==1.16.0\n"
    log = build_log(version)
    assert "pip dependencies of environment.yml" in log
    assert "numpy=1.26" in log  # said to be skipped, not silently dropped


def test_a_build_whose_message_was_lost_is_enqueued_again_by_the_reaper(celery_worker, user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from planqk_portal import reaper

    service = services.service_create(owner=user, name="requeued", archive=sample_zip("sum"))
    first = wait_for_status(service.versions.get(), FINAL, worker=celery_worker)
    assert first.status == BuildStatus.READY, build_log(first)
    # A version row whose task message never reached the broker (it was down at commit time).
    lost = ServiceVersion.objects.create(
        service=service,
        version="1.0.1",
        archive=first.archive.name,
        requirements=first.requirements,
        api_spec=first.api_spec,
    )
    ServiceVersion.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert "services.builds.service_builds_requeue" in reaper.registered()
    reaper.run_all()
    lost = wait_for_status(lost, FINAL, worker=celery_worker)
    assert lost.status == BuildStatus.READY, build_log(lost)
