"""Algorithms fixtures: an algorithm, implementations of every visibility, their files."""

from __future__ import annotations

import pytest

from planqk_samples import sample_zip
from tests.jobs.conftest import make_version  # noqa: F401 - READY versions built for real, as in the jobs tests


def make_algorithm(author, name: str = "Sum of numbers", **kwargs):
    from algorithms import services

    defaults = {"summary": "Adds numbers up.", "problem_class": "OTHER", "tags": ["classical"]}
    return services.algorithm_create(author=author, name=name, **{**defaults, **kwargs})


def make_implementation(
    owner, algorithm, *, name: str = "sum", visibility: str = "PRIVATE", shared_with=(), archive=None
):
    """An implementation with one file (the sum sample unless ``archive`` is given)."""
    from algorithms import services

    implementation = services.implementation_create(
        algorithm=algorithm,
        owner=owner,
        name=name,
        description="The **sum** sample.",
        sdk="PYTHON",
        visibility=visibility,
        shared_with=list(shared_with),
    )
    services.implementation_file_add(
        implementation=implementation, user=owner, archive=archive or sample_zip("sum"), filename="user_code.zip"
    )
    return implementation


@pytest.fixture
def media(settings, tmp_path):
    """Stored files under tmp_path (tests without a worker process)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def shared_media(settings):
    """Stored files go where worker processes read them (var/media); what the test adds is removed."""
    import shutil

    roots = [settings.MEDIA_ROOT / "service-archives", settings.MEDIA_ROOT / "implementation-files"]
    before = {root: set(root.iterdir()) if root.exists() else set() for root in roots}
    yield settings.MEDIA_ROOT
    for root in roots:
        if root.exists():
            for path in set(root.iterdir()) - before[root]:
                shutil.rmtree(path, ignore_errors=True)


def wait_for(predicate, timeout: float = 600.0, interval: float = 0.3):
    """Poll ``predicate`` until it returns something truthy (a deadline, not a timed assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
