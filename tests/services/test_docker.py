"""The build task on the Docker runtime: the sum sample becomes an image, deleting the service removes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from planqk_samples import sample_zip
from services import builds, services
from services.models import BuildStatus
from services.tasks import build_service_version

from .helpers import build_log

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
ROOT = Path(__file__).resolve().parents[2]


def test_sum_sample_builds_into_an_image_through_the_task(base_image, settings, user):
    import docker

    settings.PLANQK_RUNTIME = "docker"
    settings.PLANQK_BASE_IMAGE = base_image
    service = services.service_create(owner=user, name="sum", archive=sample_zip("sum"))
    version = service.versions.get()

    result = build_service_version.apply(args=[str(version.pk)])
    assert result.get() == BuildStatus.READY
    version.refresh_from_db()
    assert version.status == BuildStatus.READY, build_log(version)
    assert version.runtime == "docker"
    image = version.build_handle["image"]
    client = docker.from_env()
    assert client.images.get(image).id == version.build_handle["image_id"]
    assert "is READY" in build_log(version)

    # A second delivery of the same task finds nothing to do (the build was claimed once).
    assert build_service_version.apply(args=[str(version.pk)]).get() is None

    builds.service_builds_remove(builds=[{"runtime": version.runtime, "handle": version.build_handle}])
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(image)
