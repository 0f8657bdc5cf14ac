"""QAOA (depth 1) for Max-Cut on Qiskit Aer: the angles by a grid search on the exact expectation
(statevector), then sampling the best circuit to read off cuts.

data: `{"edges": [[0, 1], [1, 2], [2, 0], [2, 3]], "nodes": 4}` (`nodes` optional; edges may have
a third entry, the weight). params: `shots` (default 1024), `grid` (default 12 angles per axis),
`seed` (optional). The result: the best cut found (the partition as a bit string, qubit i is
node i from the right), its value, the expectation at the chosen angles and the counts.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)

MAX_NODES = 12


def _edges(data: dict[str, Any]) -> tuple[int, list[tuple[int, int, float]]]:
    raw = data.get("edges")
    if not isinstance(raw, list) or not raw:
        raise ValueError('"edges" must be a non-empty list of [i, j] or [i, j, weight]')
    edges = []
    for edge in raw:
        if not isinstance(edge, list) or len(edge) not in (2, 3):
            raise ValueError(f"edge {edge!r} is not [i, j] or [i, j, weight]")
        i, j = edge[0], edge[1]
        weight = edge[2] if len(edge) == 3 else 1
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (i, j)) or i == j:
            raise ValueError(f"edge {edge!r} needs two different node numbers >= 0")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValueError(f"edge {edge!r} has a weight that is not a number")
        edges.append((i, j, float(weight)))
    nodes = data.get("nodes", 1 + max(max(i, j) for i, j, _ in edges))
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 2 <= nodes <= MAX_NODES:
        raise ValueError(f'"nodes" must be from 2 to {MAX_NODES}')
    if any(max(i, j) >= nodes for i, j, _ in edges):
        raise ValueError('an edge names a node >= "nodes"')
    return nodes, edges


def cut_value(bits: str, edges: list[tuple[int, int, float]]) -> float:
    """The weight of the edges cut by a partition (bit string, node 0 on the right)."""
    side = bits[::-1]
    return sum(w for i, j, w in edges if side[i] != side[j])


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    data, params = data or {}, params or {}
    try:
        nodes, edges = _edges(data)
    except ValueError as exc:
        return ErrorResponse(code="INVALID_DATA", detail=str(exc))
    shots, grid, seed = params.get("shots", 1024), params.get("grid", 12), params.get("seed")
    for name, value, low, high in (("shots", shots, 1, 100_000), ("grid", grid, 2, 50)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return ErrorResponse(code="INVALID_PARAMS", detail=f'"{name}" must be an integer from {low} to {high}')

    from qiskit import QuantumCircuit, transpile
    from qiskit.quantum_info import Statevector
    from qiskit_aer import AerSimulator

    def circuit(gamma: float, beta: float, measure: bool) -> QuantumCircuit:
        qc = QuantumCircuit(nodes)
        qc.h(range(nodes))
        for i, j, w in edges:
            qc.rzz(-gamma * w, i, j)  # exp(i gamma w Z_i Z_j / 2): the cost layer
        qc.rx(2 * beta, range(nodes))
        if measure:
            qc.measure_all()
        return qc

    def expectation(gamma: float, beta: float) -> float:
        probabilities = Statevector(circuit(gamma, beta, False)).probabilities_dict()
        return sum(p * cut_value(bits, edges) for bits, p in probabilities.items())

    best = max(
        ((g * math.pi / grid, b * math.pi / (2 * grid)) for g in range(grid) for b in range(grid)),
        key=lambda angles: expectation(*angles),
    )
    logger.info("QAOA angles gamma=%.3f beta=%.3f", *best)
    simulator = AerSimulator()
    options: dict[str, Any] = {"shots": shots}
    if isinstance(seed, int) and not isinstance(seed, bool):
        options["seed_simulator"] = seed
    counts = simulator.run(transpile(circuit(*best, True), simulator), **options).result().get_counts()
    counts = {bits.replace(" ", ""): int(c) for bits, c in sorted(counts.items())}
    cut = max(counts, key=lambda bits: (cut_value(bits, edges), counts[bits]))
    return ResultResponse(
        result={
            "cut": cut,
            "cut_value": cut_value(cut, edges),
            "expectation": round(expectation(*best), 4),
            "gamma": round(best[0], 4),
            "beta": round(best[1], 4),
            "counts": counts,
        },
        metadata={"nodes": nodes, "edges": len(edges), "shots": shots, "depth": 1},
    )
