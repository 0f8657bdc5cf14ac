"""Running the runner and the template as a user would: in a subprocess, in a code folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from planqk_runtime.protocol import FinalResponse, final_response

ROOT = Path(__file__).resolve().parents[2]

# Variables of the contract: a test sets exactly the ones it is about.
_CONTRACT_VARIABLES = ("DATA_VALUE", "PARAMS_VALUE", "BASE64_ENCODED", "ENTRY_POINT", "LOG_LEVEL", "INPUT_DIR")


def runner_python() -> str:
    """The interpreter the runner runs on: this one, or PLANQK_TEST_RUNNER_PYTHON (e.g. a 3.10)."""
    return os.environ.get("PLANQK_TEST_RUNNER_PYTHON") or sys.executable


def runner_can_import(module: str) -> bool:
    """Whether the runner's interpreter has `module` (numpy, qiskit_aer...)."""
    check = subprocess.run([runner_python(), "-c", f"import {module}"], capture_output=True, timeout=120)
    return check.returncode == 0


@dataclass
class RunnerRun:
    """One finished `python -m planqk_runtime`."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        return self.stdout.splitlines()[-1]

    @property
    def final(self) -> FinalResponse | None:
        return final_response(self.stdout)


def write_program(folder: Path, source: str, *, module: str = "src/program.py") -> Path:
    """A user code folder whose `src/program.py` (or `module`) has `source`."""
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "__init__.py").touch()
    path = folder / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return folder


def run_runner(
    code_dir: Path, *, env: dict[str, str] | None = None, input_dir: Path | None = None, timeout: float = 120
) -> RunnerRun:
    """`python -m planqk_runtime` in `code_dir`, with the runner importable as in the base image."""
    environment = {key: value for key, value in os.environ.items() if key not in _CONTRACT_VARIABLES}
    environment["PYTHONPATH"] = str(ROOT)
    # Never the host's /var/input: an empty folder unless the test gives one.
    if input_dir is None:
        input_dir = code_dir / "no-input"
        input_dir.mkdir(exist_ok=True)
    environment["INPUT_DIR"] = str(input_dir)
    environment.update(env or {})
    completed = subprocess.run(
        [runner_python(), "-m", "planqk_runtime"],
        cwd=code_dir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return RunnerRun(completed.returncode, completed.stdout, completed.stderr)
