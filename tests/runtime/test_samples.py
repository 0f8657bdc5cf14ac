"""Each sample service gives the right answer when the runner runs it."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml
from openapi_spec_validator import validate

from planqk_runtime.protocol import ExitCode, parse_output_line
from planqk_samples import QUANTUM_BACKENDS, SAMPLES, sample_files, sample_zip, write_sample
from planqk_template import template_files
from tests.runtime.helpers import run_runner


def run_sample(tmp_path, name, *, data=None, params=None, env=None):
    """Write the sample into a folder and run it with its example input or the given one."""
    folder = tmp_path / name
    write_sample(name, folder)
    sample = SAMPLES[name]
    environment = {
        "BASE64_ENCODED": "false",
        "DATA_VALUE": json.dumps(sample.example_data if data is None else data),
        "PARAMS_VALUE": json.dumps(sample.example_params if params is None else params),
        **(env or {}),
    }
    return run_runner(folder, env=environment)


def test_samples_are_described():
    assert set(SAMPLES) == {"sum", "qiskit_bell", "dwave_qubo", "failing", "slow"}
    for sample in SAMPLES.values():
        assert sample.title
        assert sample.description
        assert sample.quantum_backend in QUANTUM_BACKENDS
        assert isinstance(sample.example_data, dict)
        assert isinstance(sample.example_params, dict)
    assert SAMPLES["qiskit_bell"].quantum_backend == "IBM"
    assert SAMPLES["dwave_qubo"].quantum_backend == "DWAVE"


def test_the_sum_sample_is_the_template():
    assert sample_files("sum") == template_files()
    assert SAMPLES["sum"].example_data == {"values": [100, 50, 200, 70, 0.69]}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_is_shaped_like_the_template_with_a_valid_api_spec(name):
    files = sample_files(name)
    for path in ("Dockerfile", "requirements.txt", "src/__init__.py", "src/__main__.py", "src/program.py"):
        assert path in files
    assert "src/libs/return_objects.py" in files
    validate(yaml.safe_load(files["openapi-spec.yml"]))
    with zipfile.ZipFile(io.BytesIO(sample_zip(name))) as archive:
        names = set(archive.namelist())
    assert names == {p for p in files if p.startswith("src/") or p in ("requirements.txt", "openapi-spec.yml")}
    assert "Dockerfile" not in names


def test_sample_api_spec_shows_the_sample_input():
    spec = yaml.safe_load(sample_files("dwave_qubo")["openapi-spec.yml"])
    assert spec["info"]["title"] == SAMPLES["dwave_qubo"].title
    assert "qubo" in spec["components"]["schemas"]["InputData"]["properties"]


def test_unknown_sample():
    with pytest.raises(KeyError, match="no sample 'nope'"):
        sample_files("nope")


def test_sum_sample(tmp_path):
    run = run_sample(tmp_path, "sum")
    assert run.final.payload == {"result": {"sum": 420.69}, "metadata": None}


def test_qiskit_bell_counts_only_00_and_11(tmp_path):
    pytest.importorskip("qiskit_aer")
    run = run_sample(tmp_path, "qiskit_bell", params={"shots": 2000, "seed": 7})
    assert run.returncode == ExitCode.SUCCESS, run.stderr
    payload = run.final.payload
    counts = payload["result"]["counts"]
    assert set(counts) <= {"00", "11"}
    assert sum(counts.values()) == 2000
    assert payload["metadata"]["backend"] == "aer_simulator"
    assert payload["metadata"]["shots"] == 2000


def test_qiskit_bell_default_shots_is_1024(tmp_path):
    pytest.importorskip("qiskit_aer")
    run = run_sample(tmp_path, "qiskit_bell", params={})
    assert sum(run.final.payload["result"]["counts"].values()) == 1024


def test_qiskit_bell_on_real_hardware_needs_an_ibm_token(tmp_path):
    run = run_sample(tmp_path, "qiskit_bell", params={"backend": "ibm_brisbane"}, env={"QISKIT_IBM_TOKEN": ""})
    assert run.returncode == ExitCode.USER_ERROR
    assert run.final.payload["code"] == "BACKEND_NOT_AVAILABLE"
    assert "QISKIT_IBM_TOKEN" in run.final.payload["detail"]
    assert "ibm_brisbane" in run.final.payload["detail"]


def test_qiskit_bell_rejects_bad_shots(tmp_path):
    run = run_sample(tmp_path, "qiskit_bell", params={"shots": 0})
    assert run.final.payload["code"] == "INVALID_PARAMS"


def test_dwave_qubo_finds_the_known_minimum(tmp_path):
    pytest.importorskip("neal")
    # x0 + x2 chosen, x1 not: energy -2, the unique minimum of this QUBO.
    run = run_sample(tmp_path, "dwave_qubo", params={"num_reads": 50, "seed": 1})
    assert run.returncode == ExitCode.SUCCESS, run.stderr
    assert run.final.payload["result"] == {"sample": {"0": 1, "1": 0, "2": 1}, "energy": -2.0}
    assert run.final.payload["metadata"]["num_reads"] == 50


def test_dwave_qubo_accepts_the_list_of_triples_form(tmp_path):
    pytest.importorskip("neal")
    data = {"qubo": [[0, 0, -1], [1, 1, -1], [0, 1, 2]]}
    run = run_sample(tmp_path, "dwave_qubo", data=data, params={"num_reads": 20, "seed": 3})
    result = run.final.payload["result"]
    assert result["energy"] == -1.0
    assert result["sample"] in ({"0": 1, "1": 0}, {"0": 0, "1": 1})


def test_dwave_qubo_rejects_a_malformed_qubo(tmp_path):
    run = run_sample(tmp_path, "dwave_qubo", data={"qubo": {"0;1": 1}})
    assert run.returncode == ExitCode.USER_ERROR
    assert run.final.payload["code"] == "INVALID_QUBO"


def test_failing_sample_gives_its_stable_code(tmp_path):
    run = run_sample(tmp_path, "failing")
    assert run.returncode == ExitCode.USER_ERROR
    assert run.final.payload["code"] == "SAMPLE_FAILURE"


def test_slow_sample_prints_interim_results_and_logs_progress(tmp_path):
    run = run_sample(tmp_path, "slow", params={"steps": 3, "sleep": 0.01})
    assert run.returncode == ExitCode.SUCCESS, run.stderr
    interim = [payload for kind, payload in map(parse_output_line, run.stdout.splitlines()) if kind == "interim"]
    assert interim == [
        {"step": 1, "steps": 3, "progress": 0.3333},
        {"step": 2, "steps": 3, "progress": 0.6667},
        {"step": 3, "steps": 3, "progress": 1.0},
    ]
    assert "step 3 of 3 done" in run.stderr
    assert run.final.payload["result"]["steps"] == 3


def test_slow_sample_defaults_are_ten_steps_of_one_second():
    assert SAMPLES["slow"].example_params == {"steps": 10, "sleep": 1}
