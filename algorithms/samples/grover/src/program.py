"""Grover search on Qiskit Aer: finds a marked bit string among 2**n with about sqrt(2**n) queries.

data: `{"marked": "101"}` (the bit string to find, 2 to 10 bits; Qiskit's order, qubit 0 on the
right). params: `shots` (default 1024), `seed` (optional), `iterations` (default the optimal
floor(pi/4 * sqrt(2**n))). The result has the counts and the most frequent outcome.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)


def _oracle(circuit: Any, marked: str) -> None:
    # Phase-flip |marked>: X on the zeros, a multi-controlled Z, X again.
    n = len(marked)
    zeros = [q for q, bit in enumerate(reversed(marked)) if bit == "0"]
    for q in zeros:
        circuit.x(q)
    circuit.h(n - 1)
    circuit.mcx(list(range(n - 1)), n - 1)
    circuit.h(n - 1)
    for q in zeros:
        circuit.x(q)


def _diffuser(circuit: Any, n: int) -> None:
    circuit.h(range(n))
    circuit.x(range(n))
    circuit.h(n - 1)
    circuit.mcx(list(range(n - 1)), n - 1)
    circuit.h(n - 1)
    circuit.x(range(n))
    circuit.h(range(n))


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    data, params = data or {}, params or {}
    marked = data.get("marked")
    if not isinstance(marked, str) or not 2 <= len(marked) <= 10 or set(marked) - {"0", "1"}:
        return ErrorResponse(code="INVALID_DATA", detail='"marked" must be a bit string of 2 to 10 bits, e.g. "101"')
    n = len(marked)
    shots = params.get("shots", 1024)
    seed = params.get("seed")
    iterations = params.get("iterations", math.floor(math.pi / 4 * math.sqrt(2**n)))
    for name, value, low, high in (("shots", shots, 1, 100_000), ("iterations", iterations, 0, 100)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return ErrorResponse(code="INVALID_PARAMS", detail=f'"{name}" must be an integer from {low} to {high}')

    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    circuit = QuantumCircuit(n, n, name="grover")
    circuit.h(range(n))
    for _ in range(iterations):
        _oracle(circuit, marked)
        _diffuser(circuit, n)
    circuit.measure(range(n), range(n))
    simulator = AerSimulator()
    logger.info("Grover search for %s: %d qubits, %d iterations, %d shots", marked, n, iterations, shots)
    options: dict[str, Any] = {"shots": shots}
    if isinstance(seed, int) and not isinstance(seed, bool):
        options["seed_simulator"] = seed
    counts = simulator.run(transpile(circuit, simulator), **options).result().get_counts()
    counts = {bits: int(count) for bits, count in sorted(counts.items())}
    found = max(counts, key=counts.get)
    return ResultResponse(
        result={"found": found, "success_probability": round(counts.get(marked, 0) / shots, 4), "counts": counts},
        metadata={"qubits": n, "iterations": iterations, "shots": shots},
    )
