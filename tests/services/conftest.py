"""Services fixtures: uploads go to a private media folder unless a worker has to read them."""

from __future__ import annotations

import pytest


@pytest.fixture
def private_media(settings, tmp_path):
    """Store uploaded archives under tmp_path (for tests without a worker process)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
