"""The demo catalogue: real algorithms, each with a working implementation shaped like the user code template.

The Bell pair is the ``qiskit_bell`` sample of :mod:`planqk_samples`; Grover search, QAOA for
Max-Cut and number partitioning live in ``algorithms/samples/`` (only what differs from the
template, laid over the template's files as the samples are). Each implementation's
``openapi-spec.yml`` is made by the samples' own spec builder, with the example input its
``input/`` folder holds, so the spec's example runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planqk_samples import QUANTUM_BACKEND_NONE, Sample, sample_zip
from planqk_template import template_files, zip_bytes

_ROOT = Path(__file__).resolve().parent / "samples"
_FROM_TEMPLATE = ("src/__init__.py", "src/__main__.py", "src/libs/__init__.py", "src/libs/return_objects.py")


@dataclass(frozen=True)
class DemoImplementation:
    name: str
    sample: str
    description: str
    sdk: str
    backend: str
    title: str = ""
    data_schema: dict[str, Any] | None = field(default=None, repr=False)
    params_schema: dict[str, Any] | None = field(default=None, repr=False)
    result_schema: dict[str, Any] | None = field(default=None, repr=False)
    example_result: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DemoAlgorithm:
    name: str
    summary: str
    problem_class: str
    tags: tuple[str, ...]
    description: str
    implementation: DemoImplementation


def _input(sample: str, which: str) -> dict[str, Any]:
    return json.loads((_ROOT / sample / "input" / f"{which}.json").read_text())


def implementation_zip(implementation: DemoImplementation) -> bytes:
    """The implementation's ``user_code.zip``: ``src/``, ``requirements.txt`` and ``openapi-spec.yml``."""
    if implementation.sample == "qiskit_bell":
        return sample_zip("qiskit_bell")
    from planqk_samples import _openapi_spec  # the samples' spec builder: one way to write a spec

    folder = _ROOT / implementation.sample
    template = template_files()
    files = {path: template[path] for path in _FROM_TEMPLATE}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and not relative.startswith("input/"):
            files[relative] = path.read_bytes()
    files["openapi-spec.yml"] = _openapi_spec(
        Sample(
            name=implementation.sample,
            title=implementation.title or implementation.name,
            description=implementation.description,
            quantum_backend=QUANTUM_BACKEND_NONE,
            example_data=_input(implementation.sample, "data"),
            example_params=_input(implementation.sample, "params"),
            data_schema=implementation.data_schema,
            params_schema=implementation.params_schema,
            result_schema=implementation.result_schema,
            example_result=implementation.example_result,
        )
    )
    return zip_bytes(files)


def example_input(implementation: DemoImplementation) -> tuple[dict[str, Any], dict[str, Any]]:
    """The example data and params the implementation's spec shows (and tests run)."""
    if implementation.sample == "qiskit_bell":
        from planqk_samples import SAMPLES

        return SAMPLES["qiskit_bell"].example_data, SAMPLES["qiskit_bell"].example_params
    return _input(implementation.sample, "data"), _input(implementation.sample, "params")


_SHOTS = {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1024}
_SEED = {"type": "integer", "nullable": True, "description": "Simulator seed, for reproducible results"}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}

DEMO_ALGORITHMS: tuple[DemoAlgorithm, ...] = (
    DemoAlgorithm(
        name="Bell state preparation",
        summary="Entangle two qubits into (|00⟩ + |11⟩)/√2 and measure: only 00 and 11 occur.",
        problem_class="FUNDAMENTALS",
        tags=("entanglement", "qiskit", "beginner"),
        description=(
            "A Hadamard gate on the first qubit and a CNOT onto the second prepare the Bell state\n\n"
            "$$|\\Phi^+\\rangle = \\frac{1}{\\sqrt{2}}\\left(|00\\rangle + |11\\rangle\\right).$$\n\n"
            "Measuring both qubits gives $00$ or $11$, each with probability $\\frac{1}{2}$, and never "
            "$01$ or $10$: the outcomes are perfectly correlated."
        ),
        implementation=DemoImplementation(
            name="Bell pair on Qiskit Aer",
            sample="qiskit_bell",
            description="Qiskit circuit `h(0); cx(0, 1); measure` on Aer's local simulator. Params: `shots`, `seed`.",
            sdk="QISKIT",
            backend="Qiskit Aer simulator",
        ),
    ),
    DemoAlgorithm(
        name="Grover search",
        summary="Find a marked item among N unsorted ones with about √N oracle queries.",
        problem_class="SEARCH",
        tags=("amplitude-amplification", "qiskit", "oracle"),
        description=(
            "Grover's algorithm starts in the uniform superposition over $N = 2^n$ bit strings and "
            "repeats the *Grover iteration*: an oracle that flips the phase of the marked string $w$ "
            "and the diffusion operator $2|s\\rangle\\langle s| - I$. After\n\n"
            "$$k = \\left\\lfloor \\frac{\\pi}{4}\\sqrt{N} \\right\\rfloor$$\n\n"
            "iterations, measuring gives $w$ with probability close to 1: a quadratic speed-up over "
            "the $O(N)$ queries of a classical search."
        ),
        implementation=DemoImplementation(
            name="Grover search on Qiskit Aer",
            sample="grover",
            description="Phase oracle and diffuser from multi-controlled X gates; 2 to 10 qubits on Aer.",
            sdk="QISKIT",
            backend="Qiskit Aer simulator",
            data_schema={
                "type": "object",
                "required": ["marked"],
                "properties": {
                    "marked": {"type": "string", "pattern": "^[01]{2,10}$", "description": "The bit string to find"}
                },
            },
            params_schema={
                "type": "object",
                "properties": {
                    "shots": _SHOTS,
                    "seed": _SEED,
                    "iterations": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
            result_schema={
                "type": "object",
                "properties": {
                    "found": {"type": "string"},
                    "success_probability": {"type": "number"},
                    "counts": _COUNTS,
                },
            },
            example_result={"found": "101", "success_probability": 0.9453, "counts": {"101": 968}},
        ),
    ),
    DemoAlgorithm(
        name="QAOA for Max-Cut",
        summary="The Quantum Approximate Optimization Algorithm on the Max-Cut problem of a graph.",
        problem_class="OPTIMIZATION",
        tags=("qaoa", "max-cut", "variational", "qiskit"),
        description=(
            "Max-Cut asks for a partition of a graph's nodes into two sets that cuts as many edges "
            "as possible. With $z_i \\in \\{-1, 1\\}$ the cut of a partition is\n\n"
            "$$C(z) = \\sum_{(i,j) \\in E} w_{ij} \\frac{1 - z_i z_j}{2}.$$\n\n"
            "QAOA of depth $p$ prepares $|\\gamma, \\beta\\rangle = \\prod_{k=1}^{p} e^{-i\\beta_k B} "
            "e^{-i\\gamma_k C} |+\\rangle^{\\otimes n}$ with the mixer $B = \\sum_i X_i$, chooses the "
            "angles that maximise $\\langle C \\rangle$ and samples cuts from the state."
        ),
        implementation=DemoImplementation(
            name="QAOA depth 1 on Qiskit Aer",
            sample="qaoa_maxcut",
            description="Depth-1 QAOA: the angles from a grid search on the exact expectation, then sampled on Aer.",
            sdk="QISKIT",
            backend="Qiskit Aer simulator",
            data_schema={
                "type": "object",
                "required": ["edges"],
                "properties": {
                    "edges": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}},
                        "description": "[i, j] or [i, j, weight]",
                    },
                    "nodes": {"type": "integer", "minimum": 2, "maximum": 12},
                },
            },
            params_schema={
                "type": "object",
                "properties": {
                    "shots": _SHOTS,
                    "grid": {"type": "integer", "minimum": 2, "maximum": 50},
                    "seed": _SEED,
                },
            },
            result_schema={
                "type": "object",
                "properties": {
                    "cut": {"type": "string"},
                    "cut_value": {"type": "number"},
                    "expectation": {"type": "number"},
                    "counts": _COUNTS,
                },
            },
            example_result={"cut": "0101", "cut_value": 4.0, "expectation": 3.1, "counts": {"0101": 300}},
        ),
    ),
    DemoAlgorithm(
        name="Number partitioning",
        summary="Split a list of numbers into two sets of equal sum, as a QUBO solved by simulated annealing.",
        problem_class="OPTIMIZATION",
        tags=("qubo", "annealing", "d-wave"),
        description=(
            "Given numbers $s_1, \\dots, s_n$, choose $x_i \\in \\{0, 1\\}$ (which set $s_i$ goes into) "
            "to minimise the squared difference of the two sums:\n\n"
            "$$H(x) = \\left( \\sum_{i=1}^{n} s_i (2 x_i - 1) \\right)^2.$$\n\n"
            "Expanded, $H$ is a QUBO (up to a constant) with linear terms $4 s_i (s_i - c)$, "
            "$c = \\sum_i s_i$, and quadratic terms $8 s_i s_j$: ready for a quantum annealer, or for "
            "simulated annealing on a laptop."
        ),
        implementation=DemoImplementation(
            name="QUBO with simulated annealing",
            sample="number_partitioning",
            description="Builds the QUBO and samples it with dwave-neal's SimulatedAnnealingSampler.",
            sdk="DWAVE_OCEAN",
            backend="Simulated annealing (dwave-neal)",
            data_schema={
                "type": "object",
                "required": ["numbers"],
                "properties": {
                    "numbers": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 200,
                        "items": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                    }
                },
            },
            params_schema={
                "type": "object",
                "properties": {"num_reads": {"type": "integer", "minimum": 1, "maximum": 10_000}, "seed": _SEED},
            },
            result_schema={
                "type": "object",
                "properties": {
                    "first": {"type": "array", "items": {"type": "number"}},
                    "second": {"type": "array", "items": {"type": "number"}},
                    "sums": {"type": "array", "items": {"type": "number"}},
                    "difference": {"type": "number"},
                },
            },
            example_result={"first": [25, 31, 27], "second": [42, 17, 21, 10], "sums": [83, 83], "difference": 0},
        ),
    ),
)
