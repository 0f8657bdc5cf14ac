"""Sample services, shaped like the user code template, for demos, seeding and tests.

Each sample folder holds only what differs from the template (``src/program.py``, ``input/``,
``requirements.txt`` when it needs packages); :func:`sample_files` lays it over the template's
files (``Dockerfile``, ``environment.yml``, ``src/__main__.py``, ``src/libs/...``), so nothing is
copied. The ``sum`` sample IS the template: its files are :func:`planqk_template.template_files`.
Every sample except ``sum`` gets an ``openapi-spec.yml`` made from the template's spec with the
sample's own input, parameter and result schemas.

Samples: ``sum``, ``qiskit_bell`` (Qiskit Aer), ``dwave_qubo`` (dwave-neal), ``failing``
(always an ErrorResponse with code ``SAMPLE_FAILURE``) and ``slow`` (interim results).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planqk_template import TEMPLATE_PATHS, template_files, write_files, zip_bytes

__all__ = [
    "QUANTUM_BACKENDS",
    "SAMPLES",
    "Sample",
    "sample_files",
    "sample_zip",
    "write_sample",
]

#: The quantum backends a service can declare (ARCHITECTURE section 4, ``planqk up -q``).
QUANTUM_BACKEND_NONE = "NONE"
QUANTUM_BACKEND_IBM = "IBM"
QUANTUM_BACKEND_DWAVE = "DWAVE"
QUANTUM_BACKENDS = (QUANTUM_BACKEND_NONE, QUANTUM_BACKEND_IBM, QUANTUM_BACKEND_DWAVE)

_ROOT = Path(__file__).resolve().parent

# What a sample takes from the template; the template's README and spec describe the sum.
_FROM_TEMPLATE = tuple(path for path in TEMPLATE_PATHS if path not in ("README.md", "openapi-spec.yml"))


@dataclass(frozen=True)
class Sample:
    """One sample service: what the portal shows and what seeds or tests run it with."""

    name: str
    title: str
    description: str
    quantum_backend: str
    example_data: dict[str, Any]
    example_params: dict[str, Any]
    #: Schemas for the API spec (OpenAPI 3.0); ``None`` keeps the template's.
    data_schema: dict[str, Any] | None = field(default=None, repr=False)
    params_schema: dict[str, Any] | None = field(default=None, repr=False)
    result_schema: dict[str, Any] | None = field(default=None, repr=False)
    example_result: dict[str, Any] | None = field(default=None, repr=False)


def _own_files(name: str) -> dict[str, bytes]:
    # The files in the sample's folder, minus what Python or editors leave behind.
    folder = _ROOT / name
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and not relative.endswith((".pyc", "~")):
            files[relative] = path.read_bytes()
    return files


def _example(name: str, which: str) -> dict[str, Any]:
    own = _ROOT / name / "input" / f"{which}.json"
    content = own.read_bytes() if own.is_file() else template_files()[f"input/{which}.json"]
    return json.loads(content)


def _sample(name: str, **kwargs: Any) -> Sample:
    # Examples come from the sample's input/ files, so the portal shows what `python -m src` runs.
    return Sample(name=name, example_data=_example(name, "data"), example_params=_example(name, "params"), **kwargs)


_NON_NEGATIVE_INT = {"type": "integer", "minimum": 0}

SAMPLES: dict[str, Sample] = {
    sample.name: sample
    for sample in (
        Sample(
            name="sum",
            title="Sum",
            description="Sums a list of numbers and optionally floors the sum: the user code template's own program.",
            quantum_backend=QUANTUM_BACKEND_NONE,
            example_data=json.loads(template_files()["input/data.json"]),
            example_params=json.loads(template_files()["input/params.json"]),
        ),
        _sample(
            "qiskit_bell",
            title="Qiskit Bell pair",
            description="Prepares a Bell pair on Qiskit Aer's local simulator and counts the measured "
            'outcomes: only "00" and "11" occur. Params: shots (default 1024), seed, backend.',
            quantum_backend=QUANTUM_BACKEND_IBM,
            data_schema={"type": "object", "description": "Not used."},
            params_schema={
                "type": "object",
                "properties": {
                    "shots": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1024},
                    "seed": {"type": "integer", "nullable": True, "description": "Simulator seed"},
                    "backend": {
                        "type": "string",
                        "default": "aer_simulator",
                        "description": "A local simulator name; other names need IBM access",
                    },
                },
            },
            result_schema={
                "type": "object",
                "properties": {"counts": {"type": "object", "additionalProperties": _NON_NEGATIVE_INT}},
            },
            example_result={"counts": {"00": 518, "11": 506}},
        ),
        _sample(
            "dwave_qubo",
            title="D-Wave QUBO (simulated annealing)",
            description="Minimises a QUBO with dwave-neal's SimulatedAnnealingSampler and returns the "
            'best sample and its energy. Data: {"qubo": {"i,j": bias}} or [[i, j, bias], ...]; '
            "params: num_reads (default 100), seed.",
            quantum_backend=QUANTUM_BACKEND_DWAVE,
            data_schema={
                "type": "object",
                "required": ["qubo"],
                "properties": {
                    "qubo": {
                        "oneOf": [
                            {"type": "object", "additionalProperties": {"type": "number"}},
                            {
                                "type": "array",
                                "items": {"type": "array", "minItems": 3, "maxItems": 3, "items": {}},
                            },
                        ],
                        "description": 'Biases by variable pair: {"0,1": 2} or [[0, 1, 2]]',
                    }
                },
            },
            params_schema={
                "type": "object",
                "properties": {
                    "num_reads": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 100},
                    "seed": {"type": "integer", "nullable": True},
                },
            },
            result_schema={
                "type": "object",
                "properties": {
                    "sample": {"type": "object", "additionalProperties": {"type": "integer", "enum": [0, 1]}},
                    "energy": {"type": "number"},
                },
            },
            example_result={"sample": {"0": 1, "1": 0, "2": 1}, "energy": -2.0},
        ),
        _sample(
            "failing",
            title="Failing service",
            description="Always answers with an ErrorResponse (code SAMPLE_FAILURE): shows how a "
            "service's errors reach its callers.",
            quantum_backend=QUANTUM_BACKEND_NONE,
            data_schema={"type": "object", "description": "Not used."},
            params_schema={"type": "object", "description": "Not used."},
            result_schema={"type": "object", "description": "Never returned."},
            example_result={},
        ),
        _sample(
            "slow",
            title="Slow service",
            description="Works for `steps` steps (default 10) of `sleep` seconds (default 1), logging "
            "progress and publishing an interim result after every step.",
            quantum_backend=QUANTUM_BACKEND_NONE,
            data_schema={"type": "object", "description": "Not used."},
            params_schema={
                "type": "object",
                "properties": {
                    "steps": {"type": "integer", "minimum": 0, "maximum": 10_000, "default": 10},
                    "sleep": {"type": "number", "minimum": 0, "maximum": 3600, "default": 1},
                },
            },
            result_schema={
                "type": "object",
                "properties": {"steps": {"type": "integer"}, "elapsed_seconds": {"type": "number"}},
            },
            example_result={"steps": 10, "elapsed_seconds": 10.01},
        ),
    )
}


def _get(name: str) -> Sample:
    try:
        return SAMPLES[name]
    except KeyError:
        raise KeyError(f"no sample {name!r}; samples: {', '.join(SAMPLES)}") from None


def _openapi_spec(sample: Sample) -> bytes:
    """The template's API spec with the sample's title, schemas and examples."""
    import yaml  # the portal's dependency; only needed when a sample's files are asked for

    spec = yaml.safe_load(template_files()["openapi-spec.yml"])
    spec["info"]["title"] = sample.title
    spec["info"]["description"] = sample.description + "\n\n" + spec["info"]["description"]
    schemas = spec["components"]["schemas"]
    for key, schema, example in (
        ("InputData", sample.data_schema, sample.example_data),
        ("InputParams", sample.params_schema, sample.example_params),
        ("ResultData", sample.result_schema, sample.example_result),
    ):
        if schema is not None:
            schemas[key] = {**schema, "example": example}
    post = spec["paths"]["/"]["post"]
    post["requestBody"]["content"]["application/json"]["example"] = {
        "data": sample.example_data,
        "params": sample.example_params,
    }
    result = spec["paths"]["/{id}/result"]["get"]["responses"]["200"]["content"]["application/json"]
    result["examples"]["result"]["value"] = {"result": sample.example_result, "metadata": None}
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100).encode("utf-8")


def sample_files(name: str) -> dict[str, bytes]:
    """A sample service's folder as ``{relative path: content}``, shaped like the template."""
    sample = _get(name)
    if name == "sum":
        return template_files()
    template = template_files()
    files = {path: template[path] for path in _FROM_TEMPLATE}
    files["openapi-spec.yml"] = _openapi_spec(sample)
    files.update(_own_files(name))
    return files


def sample_zip(name: str) -> bytes:
    """The sample as ``user_code.zip``: ``src/``, ``requirements.txt`` and ``openapi-spec.yml``.

    The same content as ``zip -r user_code.zip src requirements.txt openapi-spec.yml`` inside
    the sample's folder.
    """
    files = sample_files(name)
    chosen = {
        path: content
        for path, content in files.items()
        if path.startswith("src/") or path in ("requirements.txt", "openapi-spec.yml")
    }
    return zip_bytes(chosen)


def write_sample(name: str, dest: Path) -> None:
    """Write a sample's folder into ``dest``; refuses to overwrite (see ``write_files``)."""
    write_files(dest, sample_files(name))
