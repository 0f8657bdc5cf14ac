"""Services fixtures: uploads go to a private media folder unless a worker has to read them."""

from __future__ import annotations

import pytest


@pytest.fixture
def private_media(settings, tmp_path):
    """Store uploaded archives under tmp_path (for tests without a worker process)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def shared_media(settings):
    """Archives go where worker processes read them (var/media); removed after the test."""
    import shutil

    root = settings.MEDIA_ROOT / "service-archives"
    before = set(root.iterdir()) if root.exists() else set()
    yield settings.MEDIA_ROOT
    if root.exists():
        for path in set(root.iterdir()) - before:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env_lock(settings):
    """Hold the local runtime's lock on the environment of some requirements, as a concurrent build would.

    A build of those requirements then waits (and says so in its log) until the lock is released:
    a deterministic way to catch a build in BUILDING.
    """
    import contextlib
    import fcntl

    from jobs.runtime_factory import get_runtime

    runtime = get_runtime("local")
    held: list = []

    @contextlib.contextmanager
    def hold(requirements: str):
        runtime.envs_dir.mkdir(parents=True, exist_ok=True)
        handle = open(runtime.envs_dir / f"{runtime.env_key(requirements)}.lock", "a+")  # noqa: SIM115
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.append(handle)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            held.remove(handle)

    yield hold
    for handle in held:
        handle.close()


@pytest.fixture
def user(user):
    """Providers need a valid card to create services (payments); Stripe's 4242 test card."""
    from payments.testing import add_test_card

    add_test_card(user)
    return user


@pytest.fixture
def other_user(other_user):
    from payments.testing import add_test_card

    add_test_card(other_user)
    return other_user


def make_provider():
    """A new account with a valid card, ready to create services."""
    from payments.testing import add_test_card
    from tests.conftest import make_user

    provider = make_user()
    add_test_card(provider)
    return provider
