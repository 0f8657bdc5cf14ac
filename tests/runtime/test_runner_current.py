"""The runner's current generation (PLANQK_GENERATION=current), as qhub-commons binds run():
parameters by name from the request object, converted to their annotations; the return value
is the result. Runs the runner as the platform does, in a subprocess in a code folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planqk_runtime.generation import CURRENT, DOCUMENTED, GenerationError, detect
from planqk_runtime.outputs import OutputLimits, collect, safe_name
from planqk_runtime.secrets import Redactor, clean_secrets, env_name
from tests.runtime.helpers import run_runner, runner_can_import, write_program

TYPED = """
from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import uuid
from typing import Literal, Optional


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def run(
    count: int,
    ratio: float,
    name: str,
    flags: list[bool],
    weights: dict[str, float],
    pair: tuple[int, str],
    colour: Colour,
    point: Point,
    when: datetime.date,
    ident: uuid.UUID,
    mode: Literal["fast", "exact"] = "fast",
    note: Optional[str] = None,
    **ignored,
):
    return {
        "count": count, "ratio": ratio, "name": name, "flags": flags, "weights": weights,
        "pair": list(pair), "colour": colour.value, "point": [point.x, point.y],
        "when": when.isoformat(), "ident": str(ident), "mode": mode, "note": note,
        "types": [type(count).__name__, type(ratio).__name__, type(pair).__name__],
        "ignored": sorted(ignored),
    }
"""

REQUEST = {
    "count": 3,
    "ratio": 2,
    "name": "n",
    "flags": [True, False],
    "weights": {"a": 1},
    "pair": [1, "b"],
    "colour": "blue",
    "point": {"x": 1, "y": 2},
    "when": "2026-12-01",
    "ident": "12345678-1234-5678-1234-567812345678",
    "unknown_key": "is ignored, as qhub-commons does",
}


def current(code: Path, request: object, tmp_path: Path, env: dict[str, str] | None = None):
    inputs = tmp_path / "input"
    (inputs / "data").mkdir(parents=True, exist_ok=True)
    (inputs / "data" / "data.json").write_text(json.dumps(request))
    return run_runner(code, env={"PLANQK_GENERATION": "current", **(env or {})}, input_dir=inputs)


def test_parameters_are_bound_by_name_and_converted_to_their_annotations(tmp_path):
    code = write_program(tmp_path / "code", TYPED)
    run = current(code, REQUEST, tmp_path)
    assert run.final.succeeded, run.stdout + run.stderr
    result = run.final.payload["result"]
    assert result["ratio"] == 2.0
    assert result["types"] == ["int", "float", "tuple"]
    assert result["colour"] == "blue"
    assert result["point"] == [1, 2]
    assert result["when"] == "2026-12-01"
    assert result["mode"] == "fast"  # the default
    assert result["note"] is None  # Optional without a default
    assert result["ignored"] == []  # run() takes only what it names (**kwargs gets nothing)
    assert run.final.payload["metadata"] is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"count": "3"}, ["'count'", "expected an integer"]),
        ({"count": True}, ["'count'", "expected an integer"]),
        ({"ratio": "x"}, ["'ratio'", "expected a number"]),
        ({"flags": [1]}, ["'flags'", "true or false"]),
        ({"pair": [1, 2, 3]}, ["'pair'", "expected 2 items"]),
        ({"colour": "green"}, ["'colour'", "red"]),
        ({"mode": "slow"}, ["'mode'", "fast"]),
        ({"when": "yesterday"}, ["'when'", "date"]),
        ({"point": {"x": 1}}, ["'point'"]),
    ],
)
def test_input_that_does_not_fit_is_an_input_error_naming_the_parameter(tmp_path, change, words):
    code = write_program(tmp_path / "code", TYPED)
    run = current(code, {**REQUEST, **change}, tmp_path)
    assert run.final is not None
    assert not run.final.succeeded
    assert run.final.payload["code"] == "INVALID_INPUT"
    for word in words:
        assert word in run.final.payload["detail"]


def test_a_missing_required_parameter_is_an_input_error(tmp_path):
    code = write_program(tmp_path / "code", TYPED)
    request = {key: value for key, value in REQUEST.items() if key != "name"}
    run = current(code, request, tmp_path)
    assert run.final.payload["code"] == "INVALID_INPUT"
    assert "run() needs the input 'name' (str)" in run.final.payload["detail"]


def test_a_request_that_is_not_an_object_is_an_input_error(tmp_path):
    code = write_program(tmp_path / "code", TYPED)
    run = current(code, [1, 2], tmp_path)
    assert run.final.payload["code"] == "INVALID_INPUT"


PYDANTIC = """
from pydantic import BaseModel, Field


class Input(BaseModel):
    values: list[float]
    label: str = "sum"


class Settings(BaseModel):
    scale: int = Field(default=1, ge=1)


class Out(BaseModel):
    label: str
    total: float


def run(data: Input, settings: Settings) -> Out:
    return Out(label=data.label, total=sum(data.values) * settings.scale)
"""


@pytest.mark.skipif(not runner_can_import("pydantic"), reason="the runner's interpreter has no pydantic")
def test_pydantic_models_validate_the_input_and_the_model_returned_is_the_result(tmp_path):
    code = write_program(tmp_path / "code", PYDANTIC)
    ok = current(code, {"data": {"values": [1, 2.5]}}, tmp_path)
    # settings missing: an empty model with its defaults, as qhub-commons does.
    assert ok.final.payload == {"result": {"label": "sum", "total": 3.5}, "metadata": None}
    bad = current(code, {"data": {"values": [1]}, "settings": {"scale": 0}}, tmp_path)
    assert bad.final.payload["code"] == "INVALID_INPUT"
    assert "'settings'" in bad.final.payload["detail"]
    assert "greater than or equal to 1" in bad.final.payload["detail"]


SECRET = """
import os


class SecretValue:
    # qhub.commons.secret.SecretValue's shape: the runner recognises it by its name.
    def __init__(self, value):
        self._value = value

    def unwrap(self):
        return self._value

    def __str__(self):
        return "[redacted]"


def run(ibmToken: SecretValue, other=None):
    return {"unwrapped": ibmToken.unwrap(), "printed": str(ibmToken), "env": os.environ.get("SECRET_IBM_TOKEN")}
"""


def test_secret_value_parameters_come_from_their_secret_variable(tmp_path):
    code = write_program(tmp_path / "code", SECRET)
    run = current(code, {}, tmp_path, env={"SECRET_IBM_TOKEN": "s3cret"})
    assert run.final.payload["result"] == {"unwrapped": "s3cret", "printed": "[redacted]", "env": "s3cret"}
    missing = current(code, {}, tmp_path)
    assert missing.final.payload["code"] == "INVALID_INPUT"
    assert "$secrets" in missing.final.payload["detail"]
    assert "SECRET_IBM_TOKEN" in missing.final.payload["detail"]


def test_data_pool_parameters_are_refused_with_a_clear_message(tmp_path):
    code = write_program(tmp_path / "code", "class DataPool:\n    pass\n\ndef run(training: DataPool):\n    return 1\n")
    run = current(code, {}, tmp_path)
    assert run.final.payload["code"] == "INVALID_INPUT"
    assert "DataPool" in run.final.payload["detail"]


def test_any_json_value_returned_is_the_result_as_it_is(tmp_path):
    code = write_program(tmp_path / "code", "def run():\n    return [1, 'two', None]\n")
    assert current(code, {}, tmp_path).final.payload == {"result": [1, "two", None], "metadata": None}
    code = write_program(tmp_path / "code2", "def run():\n    return float('nan')\n")
    assert current(code, {}, tmp_path).final.payload["code"] == "RESULT_NOT_SERIALIZABLE"


def test_an_object_with_a_result_attribute_is_not_a_2022_response_in_the_current_generation(tmp_path):
    program = """
class Reply:
    def __init__(self):
        self.result = 1
        self.code = "X"
        self.detail = "y"

def run():
    return {"nested": Reply().__dict__}
"""
    code = write_program(tmp_path / "code", program)
    run = current(code, {}, tmp_path)
    assert run.final.payload == {"result": {"nested": {"result": 1, "code": "X", "detail": "y"}}, "metadata": None}


def test_without_the_generation_variable_the_2022_contract_is_unchanged(tmp_path):
    code = write_program(tmp_path / "code", "def run(data=None, params=None):\n    return {'d': data}\n")
    inputs = tmp_path / "input"
    (inputs / "data").mkdir(parents=True)
    (inputs / "data" / "data.json").write_text('{"a": 1}')
    run = run_runner(code, input_dir=inputs)
    assert run.final.payload == {"result": {"d": {"a": 1}}, "metadata": None}


# --- generation detection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "generation"),
    [
        ("def run(data=None, params=None):", DOCUMENTED),
        ("def run(data: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> Any:", DOCUMENTED),
        ("def run(data: Optional[Dict[str, Any]] = None, params: Optional[Dict[str, Any]] = None):", DOCUMENTED),
        ("def run(data: InputData, params: InputParams) -> Result:", CURRENT),
        ("def run(values: list[float]) -> float:", CURRENT),
        ("def run():", CURRENT),
        ("def run(data, params, token: SecretValue):", CURRENT),
        ("def run(params=None, data=None):", CURRENT),
    ],
)
def test_the_generation_is_detected_from_runs_signature(tmp_path, signature, generation):
    write_program(tmp_path, f"{signature}\n    return None\n")
    assert detect(tmp_path).generation == generation


def test_planqk_json_overrides_the_detection_and_a_bad_value_is_an_error(tmp_path):
    write_program(tmp_path, "def run(data=None, params=None):\n    return None\n")
    (tmp_path / "planqk.json").write_text('{"serviceId": "x", "generation": "current"}')
    assert detect(tmp_path).generation == CURRENT
    (tmp_path / "planqk.json").write_text('{"generation": "2023"}')
    with pytest.raises(GenerationError, match='"2022" or "current"'):
        detect(tmp_path)


# --- output files, secrets ----------------------------------------------------------------


def test_safe_names_never_leave_the_folder_and_stay_unique():
    taken: set[str] = set()
    names = []
    for raw in ["../../etc/passwd", "..", ".bashrc", "a b\nc", "a_b_c", "ü.txt", "x" * 300, ""]:
        name = safe_name(raw, taken)
        taken.add(name)
        names.append(name)
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name
        assert ".." not in name
        assert not name.startswith(".")
        assert 0 < len(name) <= 200


def test_collect_refuses_hard_links_to_files_elsewhere(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret data")
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").hardlink_to(outside)
    (out / "ok.txt").write_text("fine")
    files, notes = collect(out, OutputLimits())
    assert [f.name for f in files] == ["ok.txt"]
    assert any("hard links" in note for note in notes)


def test_collect_of_a_total_over_its_cap_keeps_what_fits(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in "abc":
        (out / name).write_bytes(b"x" * 600)
    files, notes = collect(out, OutputLimits(max_files=10, max_file_bytes=1000, max_total_bytes=1300))
    assert [f.name for f in files] == ["a", "b"]
    assert any("'c'" in note for note in notes)


def test_secret_names_map_to_variables_and_values_are_redacted_in_every_form():
    assert env_name("api_token") == "SECRET_API_TOKEN"
    assert env_name("ibmToken") == "SECRET_IBM_TOKEN"
    assert env_name("API_KEY") == "SECRET_API_KEY"
    redact = Redactor(['p"w\\d', "line1\nline2"])
    assert redact('got p"w\\d and "p\\"w\\\\d" and line2') == 'got [redacted] and "[redacted]" and [redacted]'
    for bad in ({"1abc": "x"}, {"a-b": "x"}, {"ok": 5}, {"ok": "a\x00b"}, ["x"]):
        with pytest.raises(ValueError, match="ecret"):
            clean_secrets(bad)


def test_a_handler_error_fails_with_its_title_and_detail(tmp_path):
    program = """
class HandlerError(Exception):
    # qhub.commons.runtime.error.HandlerError's shape
    def __init__(self, title, detail=None):
        super().__init__(title)
        self.title = title
        self.detail = detail if detail is not None else title


def run(n: int):
    raise HandlerError("Backend unavailable", "the QPU is in maintenance")
"""
    code = write_program(tmp_path / "code", program)
    run = current(code, {"n": 1}, tmp_path)
    assert run.final.payload == {"code": "EXECUTION_ERROR", "detail": "Backend unavailable: the QPU is in maintenance"}
