"""The service's code, the current way (Kipu Quantum Hub's qhub-serve convention).

``run()`` declares what it needs as typed parameters: the platform binds each one from the
request's top-level key of the same name (``{"data": {...}, "params": {...}}`` here) and checks
it against the pydantic model. Whatever ``run()`` returns is the result, and every file the
program writes into ``OUTPUT_DIRECTORY`` becomes a result file of the execution.

A secret (an API token of a quantum provider, say) is a parameter typed ``SecretValue``
(``from qhub.commons.secret import SecretValue``, in the ``qhub-commons`` package): the caller
sends it in the request's ``$secrets`` object, the program reads it with ``.unwrap()``, and the
platform keeps its value out of every stored log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)


class InputData(BaseModel):
    values: list[float] = Field(description="The numbers to add up.")


class InputParams(BaseModel):
    round_off: bool = Field(default=False, description="Round the sum to a whole number.")


class SumResult(BaseModel):
    sum: float
    count: int


def output_directory() -> Path:
    """Where result files go: the platform's OUTPUT_DIRECTORY, or ./out when run by hand."""
    path = Path(os.environ.get("OUTPUT_DIRECTORY", "out"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(data: InputData, params: InputParams) -> SumResult:
    """Add up ``data.values``; also write them as ``values.csv``, a result file."""
    logger.info("summing %d values", len(data.values))
    total = sum(data.values)
    if params.round_off:
        total = round(total)
    lines = ["value", *(str(value) for value in data.values)]
    (output_directory() / "values.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return SumResult(sum=total, count=len(data.values))
