"""Number partitioning as a QUBO, minimised by simulated annealing (dwave-neal).

Split `numbers` into two sets whose sums are as equal as possible: with x_i in {0, 1} the
difference is sum_i s_i (2 x_i - 1), and its square is a QUBO. data: `{"numbers": [25, 7, 13,
31, 42, 17, 21, 10]}` (2 to 200 positive numbers). params: `num_reads` (default 200), `seed`
(optional). The result: both sets, their sums and the difference.
"""

from __future__ import annotations

import logging
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)


def partition_qubo(numbers: list[float]) -> dict[tuple[int, int], float]:
    """(sum_i s_i (2 x_i - 1))^2 without its constant: linear 4 s_i (s_i - c), quadratic 8 s_i s_j."""
    total = sum(numbers)
    qubo: dict[tuple[int, int], float] = {}
    for i, s in enumerate(numbers):
        qubo[(i, i)] = 4 * s * (s - total)
        for j in range(i + 1, len(numbers)):
            qubo[(i, j)] = 8 * s * numbers[j]
    return qubo


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    data, params = data or {}, params or {}
    numbers = data.get("numbers")
    if (
        not isinstance(numbers, list)
        or not 2 <= len(numbers) <= 200
        or any(isinstance(n, bool) or not isinstance(n, int | float) or n <= 0 for n in numbers)
    ):
        return ErrorResponse(code="INVALID_DATA", detail='"numbers" must be a list of 2 to 200 positive numbers')
    num_reads, seed = params.get("num_reads", 200), params.get("seed")
    if isinstance(num_reads, bool) or not isinstance(num_reads, int) or not 1 <= num_reads <= 10_000:
        return ErrorResponse(code="INVALID_PARAMS", detail='"num_reads" must be an integer from 1 to 10000')

    import neal

    sampler = neal.SimulatedAnnealingSampler()
    kwargs: dict[str, Any] = {"num_reads": num_reads}
    if isinstance(seed, int) and not isinstance(seed, bool):
        kwargs["seed"] = seed
    logger.info("annealing a QUBO of %d numbers, %d reads", len(numbers), num_reads)
    best = sampler.sample_qubo(partition_qubo(numbers), **kwargs).first
    first = [numbers[i] for i in range(len(numbers)) if best.sample[i] == 1]
    second = [numbers[i] for i in range(len(numbers)) if best.sample[i] == 0]
    return ResultResponse(
        result={
            "first": first,
            "second": second,
            "sums": [sum(first), sum(second)],
            "difference": abs(sum(first) - sum(second)),
        },
        metadata={"num_reads": num_reads, "energy": best.energy},
    )
