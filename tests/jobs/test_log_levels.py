"""Logs worth reading: the Bell sample's log shows its own line, not Qiskit's transpiler passes."""

from __future__ import annotations

import json

import pytest

from planqk_samples import write_sample
from tests.runtime.helpers import run_runner, runner_can_import

pytestmark = pytest.mark.skipif(not runner_can_import("qiskit_aer"), reason="the runner's Python has no qiskit_aer")


def _bell_log(tmp_path, level: str | None) -> list[str]:
    folder = tmp_path / "bell"
    write_sample("qiskit_bell", folder)
    env = {"BASE64_ENCODED": "false", "DATA_VALUE": "{}", "PARAMS_VALUE": json.dumps({"shots": 64, "seed": 7})}
    if level is not None:
        env["LOG_LEVEL"] = level
    run = run_runner(folder, env=env)
    assert run.returncode == 0, run.stderr
    assert run.final.kind == "result"
    return (run.stdout + run.stderr).splitlines()


def _library_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if " qiskit." in line or " qiskit:" in line]


def test_the_bell_sample_logs_its_own_line_and_no_transpiler_passes_by_default(tmp_path):
    lines = _bell_log(tmp_path, None)
    assert any("running a Bell pair on aer_simulator with 64 shots" in line for line in lines)
    assert _library_lines(lines) == []


def test_log_level_info_keeps_the_libraries_quiet_too(tmp_path):
    assert _library_lines(_bell_log(tmp_path, "INFO")) == []


def test_log_level_debug_shows_the_transpiler_passes(tmp_path):
    passes = _library_lines(_bell_log(tmp_path, "DEBUG"))
    assert len(passes) > 20
    assert any("qiskit.passmanager" in line or "qiskit.transpiler" in line for line in passes)
