"""A Bell pair on Qiskit Aer's local simulator: the counts contain only "00" and "11".

params: `shots` (default 1024), `seed` (optional, for reproducible counts) and `backend`
(default "aer_simulator"). A backend that is not a local simulator is real hardware or a cloud
simulator: this sample answers with an ErrorResponse that says what running there needs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .libs.return_objects import ErrorResponse, ResultResponse

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "aer_simulator"
MAX_SHOTS = 1_000_000
# Local simulator names and the AerSimulator method each stands for.
LOCAL_BACKENDS = {
    "aer_simulator": "automatic",
    "qasm_simulator": "automatic",
    "aer_simulator_statevector": "statevector",
    "aer_simulator_density_matrix": "density_matrix",
    "aer_simulator_stabilizer": "stabilizer",
    "aer_simulator_matrix_product_state": "matrix_product_state",
}


def _int_param(params: dict[str, Any], name: str, default: int | None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'"{name}" must be an integer')
    return value


def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> ResultResponse | ErrorResponse:
    """Prepare (|00> + |11>)/sqrt(2), measure both qubits `shots` times and count."""
    params = params or {}
    try:
        shots = _int_param(params, "shots", 1024)
        seed = _int_param(params, "seed", None)
    except ValueError as exc:
        return ErrorResponse(code="INVALID_PARAMS", detail=str(exc))
    if not 1 <= shots <= MAX_SHOTS:
        return ErrorResponse(code="INVALID_PARAMS", detail=f'"shots" must be between 1 and {MAX_SHOTS}')
    backend = params.get("backend", DEFAULT_BACKEND)
    if not isinstance(backend, str) or not backend:
        return ErrorResponse(code="INVALID_PARAMS", detail='"backend" must be a non-empty string')

    if backend not in LOCAL_BACKENDS:
        local = ", ".join(sorted(LOCAL_BACKENDS))
        if not os.environ.get("QISKIT_IBM_TOKEN"):
            detail = (
                f'backend "{backend}" is real hardware or a cloud simulator: it needs QISKIT_IBM_TOKEN '
                "(set the service's quantum backend to IBM and store an IBM token in your account). "
                f"Local simulators: {local}."
            )
        else:
            detail = (
                f'backend "{backend}" is real hardware or a cloud simulator: this sample runs only on '
                f"the local simulators ({local}); running on IBM hardware needs qiskit-ibm-runtime."
            )
        return ErrorResponse(code="BACKEND_NOT_AVAILABLE", detail=detail)

    # Imported here so a parameter error is answered without paying for Qiskit's import.
    import qiskit
    import qiskit_aer
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    circuit = QuantumCircuit(2, 2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])

    simulator = AerSimulator(method=LOCAL_BACKENDS[backend])
    logger.info("running a Bell pair on %s with %d shots", backend, shots)
    options: dict[str, Any] = {"shots": shots}
    if seed is not None:
        options["seed_simulator"] = seed
    result = simulator.run(transpile(circuit, simulator), **options).result()
    counts = {bits: int(count) for bits, count in sorted(result.get_counts().items())}
    return ResultResponse(
        result={"counts": counts},
        metadata={
            "backend": backend,
            "shots": shots,
            "seed": seed,
            "time_taken": result.time_taken,
            "qiskit_version": qiskit.__version__,
            "qiskit_aer_version": qiskit_aer.__version__,
        },
    )
