"""Admission's input schema check, alone: what validation adds to each ``POST /``.

``python -m bench schema_check`` measures, for the sum and Bell samples' specs: compiling the
input schemas of a spec (YAML parse, ``$ref`` checks, validator construction: once per version
and process, cached afterwards), and the per-POST check of valid and invalid input with the
cached validators (what the gateway pays on every start). No database, no server: the numbers
set the check beside the gateway's POST cost in ``bench/results/gateway.md``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

from bench.common import summary_ms, write_table

ROUNDS_COLD = 200
ROUNDS_WARM = 20_000


def _time(fn: Callable[[], object], rounds: int) -> list[float]:
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - started)
    return durations


def main(argv: list[str] | None = None) -> int:
    import planqk_service_api as service_api
    from planqk_samples import sample_files
    from planqk_service_api import schema

    cases = {
        "sum": ({"values": [100, 50, 200, 70, 0.69]}, {"round_off": False}, {"values": [1, "x", 3]}),
        "qiskit_bell": ({}, {"shots": 1024, "backend": "aer_simulator"}, {"shots": "many"}),
    }
    rows = []
    load_before = os.getloadavg()[0]
    for name, (data, params, bad) in cases.items():
        text = sample_files(name)["openapi-spec.yml"].decode()

        def cold(text: str = text) -> object:
            schema._schemas_of_text.cache_clear()
            schema._validator.cache_clear()
            return schema.input_schemas_of(text)

        rows.append({"spec": name, "what": "compile (cold: parse, check $refs, build validators)",
                     **summary_ms(_time(cold, ROUNDS_COLD))})  # fmt: skip
        compiled = schema.input_schemas_of(text)

        def ok(compiled: schema.InputSchemas = compiled, data: dict = data, params: dict = params) -> None:
            schema.check_input(compiled, data=data, params=params)

        bad_input = {"params": bad} if name == "qiskit_bell" else {"data": bad}

        def refused(compiled: schema.InputSchemas = compiled, bad_input: dict = bad_input) -> None:
            with contextlib.suppress(service_api.ServiceAPIError):
                schema.check_input(compiled, **bad_input)

        for label, fn in (("check valid input (cached, per POST)", ok), ("check invalid input: 422 (cached)", refused)):
            durations = _time(fn, ROUNDS_WARM)
            summary = summary_ms(durations)
            summary["mean µs"] = f"{sum(durations) / len(durations) * 1e6:.1f}"
            rows.append({"spec": name, "what": label, **summary})
    for row in rows:
        row.setdefault("mean µs", f"{float(row['mean ms']) * 1000:.0f}")
    notes = (
        f"{ROUNDS_COLD} cold compilations and {ROUNDS_WARM} cached checks per row, in one process, "
        f"openapi-schema-validator (jsonschema) as admission uses it. Load average before/after: "
        f"{load_before:.1f}/{os.getloadavg()[0]:.1f} (the machine is shared with other work, so "
        "these are upper bounds). The compile happens once per version and process (admission keeps "
        "the compiled schemas by version id); every POST pays only the cached check, to be set beside "
        "the gateway's POST of bench/results/gateway.md."
    )
    write_table("schema_check", "Admission's input schema check (per POST)", rows, notes)
    return 0
