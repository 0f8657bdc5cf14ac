"""A long-running service: `steps` steps (default 10) of `sleep` seconds each (default 1).

It logs its progress and publishes an interim result after every step by printing a line
`PlanQK:Job:InterimResult: <json>`, which needs no import from the platform.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)

MAX_STEPS = 10_000
MAX_SLEEP = 3600.0


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    """Sleep step by step, reporting progress, then report how long it took."""
    params = params or {}
    steps = params.get("steps", 10)
    sleep = params.get("sleep", 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        return ErrorResponse(code="INVALID_PARAMS", detail=f'"steps" must be an integer from 0 to {MAX_STEPS}')
    if isinstance(sleep, bool) or not isinstance(sleep, int | float) or not 0 <= sleep <= MAX_SLEEP:
        return ErrorResponse(code="INVALID_PARAMS", detail=f'"sleep" must be a number from 0 to {MAX_SLEEP:g}')

    started = time.monotonic()
    for step in range(1, steps + 1):
        time.sleep(sleep)
        logger.info("step %d of %d done", step, steps)
        progress = {"step": step, "steps": steps, "progress": round(step / steps, 4)}
        print("PlanQK:Job:InterimResult: " + json.dumps(progress), flush=True)
    elapsed = time.monotonic() - started
    return ResultResponse(result={"steps": steps, "elapsed_seconds": round(elapsed, 3)})
