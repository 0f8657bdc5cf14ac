"""The import check of a build's smoke test: ``ENTRY_POINT=planqk_runtime.smoke:check``.

The runner calls :func:`check` instead of the service's ``run``; it imports ``src.program`` and
finds ``run`` without calling it, so a version whose code cannot import (or has no entry point)
fails its build, also when its spec has no example input to run.
"""

from __future__ import annotations

from typing import Any

from planqk_runtime.runner import DEFAULT_ENTRY_POINT, RunnerFailure, load_entry_point


def check(data: Any = None, params: Any = None) -> dict[str, str]:
    """Import the service's entry point; raise with the runner's own message when it cannot."""
    try:
        load_entry_point(DEFAULT_ENTRY_POINT)
    except RunnerFailure as failure:
        raise RuntimeError(f"{failure.code}: {failure.detail}") from None
    return {"entry_point": DEFAULT_ENTRY_POINT}
