"""A service that always fails with a stable error code: shows how errors reach the caller."""

from __future__ import annotations

import logging
from typing import Any

from .libs.return_objects import ErrorResponse

logger = logging.getLogger(__name__)

ERROR_CODE = "SAMPLE_FAILURE"


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ErrorResponse:
    """Return an ErrorResponse, whatever the input."""
    logger.warning("this sample fails on purpose")
    return ErrorResponse(
        code=ERROR_CODE, detail="This sample service always fails, to show how errors reach the caller."
    )
