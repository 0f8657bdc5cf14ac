"""Minimises a QUBO with D-Wave's simulated annealing sampler (dwave-neal), on this machine.

data: `{"qubo": {"0,0": -1, "1,1": -1, "0,1": 2}}` (keys "i,j") or
`{"qubo": [[0, 0, -1], [1, 1, -1], [0, 1, 2]]}` (triples i, j, bias). Variables are integers or
strings. params: `num_reads` (default 100), `seed` (optional).
The result is the lowest-energy sample found and its energy.
"""

from __future__ import annotations

import logging
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)

MAX_NUM_READS = 100_000

Variable = int | str


def _variable(raw: Any) -> Variable:
    if isinstance(raw, bool):
        raise ValueError(f"invalid variable {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip():
        text = raw.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    raise ValueError(f"invalid variable {raw!r}")


def _bias(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"invalid bias {raw!r}")
    return float(raw)


def parse_qubo(raw: Any) -> dict[tuple[Variable, Variable], float]:
    """A QUBO from `{"i,j": bias}` or `[[i, j, bias], ...]`; equal pairs are added up."""
    terms: list[tuple[Any, Any, Any]] = []
    if isinstance(raw, dict):
        for key, bias in raw.items():
            parts = str(key).split(",")
            if len(parts) != 2:
                raise ValueError(f'key {key!r} is not of the form "i,j"')
            terms.append((parts[0], parts[1], bias))
    elif isinstance(raw, list):
        for entry in raw:
            if not isinstance(entry, list) or len(entry) != 3:
                raise ValueError(f"entry {entry!r} is not a triple [i, j, bias]")
            terms.append((entry[0], entry[1], entry[2]))
    else:
        raise ValueError('"qubo" must be an object {"i,j": bias} or a list of [i, j, bias]')
    if not terms:
        raise ValueError('"qubo" is empty')
    qubo: dict[tuple[Variable, Variable], float] = {}
    for i, j, bias in terms:
        pair = (_variable(i), _variable(j))
        qubo[pair] = qubo.get(pair, 0.0) + _bias(bias)
    return qubo


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    """Sample the QUBO `num_reads` times and return the best sample."""
    data = data or {}
    params = params or {}
    try:
        qubo = parse_qubo(data.get("qubo"))
    except ValueError as exc:
        return ErrorResponse(code="INVALID_QUBO", detail=str(exc))
    num_reads = params.get("num_reads", 100)
    seed = params.get("seed")
    if isinstance(num_reads, bool) or not isinstance(num_reads, int) or not 1 <= num_reads <= MAX_NUM_READS:
        return ErrorResponse(code="INVALID_PARAMS", detail=f'"num_reads" must be an integer from 1 to {MAX_NUM_READS}')
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return ErrorResponse(code="INVALID_PARAMS", detail='"seed" must be an integer')

    import neal

    logger.info("annealing a QUBO with %d terms, %d reads", len(qubo), num_reads)
    sampler = neal.SimulatedAnnealingSampler()
    sampleset = sampler.sample_qubo(qubo, num_reads=num_reads, seed=seed)
    best = sampleset.first
    sample = {str(variable): int(value) for variable, value in sorted(best.sample.items(), key=str)}
    return ResultResponse(
        result={"sample": sample, "energy": float(best.energy)},
        metadata={
            "sampler": "neal.SimulatedAnnealingSampler",
            "num_reads": num_reads,
            "num_variables": len(sampleset.variables),
            "occurrences": int(best.num_occurrences),
        },
    )
