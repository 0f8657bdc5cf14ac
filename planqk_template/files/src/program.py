"""Your service: the platform calls `run(data=..., params=...)` with the caller's input.

`data` holds the problem (e.g. a QUBO), `params` the settings of one execution (e.g. shots or a
"backend" name). Return a ResultResponse or an ErrorResponse. Do not rename `src`, `program.py`
or `run`: they are the service's entry point.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    """Sums `data["values"]`; floors the sum when `params["round_off"]` is true."""
    data = data or {}
    params = params or {}
    values = data.get("values", [])
    round_off = bool(params.get("round_off", False))

    if not isinstance(values, list) or not all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in values
    ):
        return ErrorResponse(code="INVALID_VALUES", detail='"values" must be a list of numbers')

    logger.info("summing %d values (round_off=%s)", len(values), round_off)
    total = sum(values)
    if round_off:
        total = math.floor(total)
    return ResultResponse(result={"sum": total})
