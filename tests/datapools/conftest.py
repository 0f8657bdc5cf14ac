"""Data pool fixtures: every test stores files in its own temporary media folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def media_root(request, settings, tmp_path):
    """Uploads land in a temporary folder; tests look there to prove what was (not) stored.

    Tests with a Celery worker keep the configured folder: the worker is another process that
    reads the same storage, as it does in production.
    """
    if "celery_worker" in request.fixturenames:
        from pathlib import Path

        return Path(settings.MEDIA_ROOT)
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root) -> list:
    """Every stored object under the media root."""
    return sorted(path for path in root.rglob("*") if path.is_file())
