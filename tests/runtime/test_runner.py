"""The runner (`python -m planqk_runtime`) under the runtime contract, as the platform runs it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from planqk_runtime.protocol import ExitCode, parse_output_line
from tests.runtime.helpers import run_runner, runner_can_import, write_program

ECHO = """
def run(data=None, params=None):
    return {"data": data, "params": params}
"""

DATA = {"values": [100, 50, 200, 70, 0.69]}
PARAMS = {"round_off": False}
# The exact strings of service-platform.md's `base64 -w 0` examples.
DATA_B64 = "eyJ2YWx1ZXMiOiBbMTAwLCA1MCwgMjAwLCA3MCwgMC42OV19"
PARAMS_B64 = "eyJyb3VuZF9vZmYiOiBmYWxzZX0="


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    return write_program(tmp_path / "code", ECHO)


def write_json(path: Path, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return path


def assert_result(run, expected_result, metadata=None):
    assert run.returncode == ExitCode.SUCCESS, run.stderr
    kind, payload = parse_output_line(run.last_line)
    assert kind == "result", run.stdout
    assert payload == {"result": expected_result, "metadata": metadata}
    return payload


def assert_error(run, code, exit_code=ExitCode.RUNNER_ERROR):
    assert run.returncode == exit_code, run.stderr
    kind, payload = parse_output_line(run.last_line)
    assert kind == "error", run.stdout
    assert payload["code"] == code
    return payload["detail"]


# --- input -------------------------------------------------------------------------------------


def test_input_files_in_data_and_params_folders(echo, tmp_path):
    input_dir = tmp_path / "input"
    write_json(input_dir / "data" / "data.json", DATA)
    write_json(input_dir / "params" / "params.json", PARAMS)
    assert_result(run_runner(echo, input_dir=input_dir), {"data": DATA, "params": PARAMS})


def test_input_files_directly_in_input_dir(echo, tmp_path):
    input_dir = tmp_path / "input"
    write_json(input_dir / "data.json", DATA)
    write_json(input_dir / "params.json", PARAMS)
    assert_result(run_runner(echo, input_dir=input_dir), {"data": DATA, "params": PARAMS})


def test_folder_layout_wins_over_flat_layout_and_files_over_environment(echo, tmp_path):
    input_dir = tmp_path / "input"
    write_json(input_dir / "data" / "data.json", {"from": "folder"})
    write_json(input_dir / "data.json", {"from": "flat"})
    write_json(input_dir / "params.json", {"from": "flat"})
    env = {"DATA_VALUE": '{"from": "env"}', "PARAMS_VALUE": '{"from": "env"}', "BASE64_ENCODED": "false"}
    run = run_runner(echo, input_dir=input_dir, env=env)
    assert_result(run, {"data": {"from": "folder"}, "params": {"from": "flat"}})


def test_base64_environment_variables(echo):
    run = run_runner(echo, env={"DATA_VALUE": DATA_B64, "PARAMS_VALUE": PARAMS_B64})
    assert_result(run, {"data": DATA, "params": PARAMS})


def test_base64_wrapped_by_the_base64_tool_and_without_padding(echo):
    wrapped = base64.encodebytes(json.dumps({"text": "x" * 100}).encode()).decode()
    assert "\n" in wrapped.strip()
    run = run_runner(echo, env={"DATA_VALUE": wrapped, "PARAMS_VALUE": PARAMS_B64.rstrip("=")})
    assert_result(run, {"data": {"text": "x" * 100}, "params": PARAMS})


@pytest.mark.parametrize("flag", ["false", "False", "FALSE"])
def test_plain_json_environment_variables_with_base64_encoded_false(echo, flag):
    env = {"DATA_VALUE": json.dumps(DATA), "PARAMS_VALUE": json.dumps(PARAMS), "BASE64_ENCODED": flag}
    assert_result(run_runner(echo, env=env), {"data": DATA, "params": PARAMS})


def test_missing_input_is_an_empty_object(echo):
    assert_result(run_runner(echo), {"data": {}, "params": {}})


def test_empty_file_and_empty_variable_are_empty_objects(echo, tmp_path):
    input_dir = tmp_path / "input"
    (input_dir / "data").mkdir(parents=True)
    (input_dir / "data" / "data.json").write_text("\n")
    run = run_runner(echo, input_dir=input_dir, env={"PARAMS_VALUE": ""})
    assert_result(run, {"data": {}, "params": {}})


def test_a_directory_where_the_input_file_should_be_is_ignored(echo, tmp_path):
    # `docker run -v missing.json:/var/input/data/data.json` mounts an empty directory.
    input_dir = tmp_path / "input"
    (input_dir / "data" / "data.json").mkdir(parents=True)
    run = run_runner(echo, input_dir=input_dir, env={"DATA_VALUE": DATA_B64})
    assert_result(run, {"data": DATA, "params": {}})


# --- errors ------------------------------------------------------------------------------------


def test_malformed_json_file_is_invalid_input(echo, tmp_path):
    input_dir = tmp_path / "input"
    (input_dir / "params").mkdir(parents=True)
    (input_dir / "params" / "params.json").write_text('{"round_off": fals')
    detail = assert_error(run_runner(echo, input_dir=input_dir), "INVALID_INPUT")
    assert "params.json is not valid JSON" in detail


def test_malformed_plain_json_variable_is_invalid_input(echo):
    run = run_runner(echo, env={"DATA_VALUE": "{not json", "BASE64_ENCODED": "false"})
    assert "DATA_VALUE is not valid JSON" in assert_error(run, "INVALID_INPUT")


def test_bad_base64_is_invalid_input(echo):
    run = run_runner(echo, env={"DATA_VALUE": "not*base64!"})
    detail = assert_error(run, "INVALID_INPUT")
    assert "DATA_VALUE is not valid base64" in detail


def test_base64_of_something_that_is_not_json_is_invalid_input(echo):
    run = run_runner(echo, env={"PARAMS_VALUE": base64.b64encode(b"round_off=false").decode()})
    assert "PARAMS_VALUE (decoded) is not valid JSON" in assert_error(run, "INVALID_INPUT")


def test_import_error_in_user_code(tmp_path):
    code = write_program(tmp_path, "import a_package_nobody_installed\n\ndef run(data, params):\n    return 1\n")
    run = run_runner(code)
    detail = assert_error(run, "IMPORT_ERROR")
    assert "a_package_nobody_installed" in detail
    assert "ModuleNotFoundError" in detail
    assert "Traceback" in run.stderr


def test_syntax_error_in_user_code_is_an_import_error(tmp_path):
    code = write_program(tmp_path, "def run(data, params)\n    return 1\n")
    run = run_runner(code)
    assert "SyntaxError" in assert_error(run, "IMPORT_ERROR")
    assert "SyntaxError" in run.stderr


def test_exception_at_import_time_is_an_import_error(tmp_path):
    code = write_program(tmp_path, "raise RuntimeError('no config')\n")
    assert "RuntimeError: no config" in assert_error(run_runner(code), "IMPORT_ERROR")


def test_missing_program_module_is_entry_point_not_found(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").touch()
    detail = assert_error(run_runner(tmp_path), "ENTRY_POINT_NOT_FOUND")
    assert "src.program" in detail


def test_missing_run_function_is_entry_point_not_found(tmp_path):
    code = write_program(tmp_path, "def execute(data, params):\n    return 1\n")
    detail = assert_error(run_runner(code), "ENTRY_POINT_NOT_FOUND")
    assert "'run'" in detail


def test_entry_point_from_the_environment(tmp_path):
    code = write_program(tmp_path, "def main(data, params):\n    return 'custom'\n", module="src/other.py")
    assert_result(run_runner(code, env={"ENTRY_POINT": "src.other:main"}), "custom")
    run = run_runner(code, env={"ENTRY_POINT": "nonsense"})
    assert "not of the form module:function" in assert_error(run, "ENTRY_POINT_NOT_FOUND")


def test_exception_in_run_is_an_execution_error_with_traceback(tmp_path):
    code = write_program(
        tmp_path,
        """
        def helper():
            raise ValueError("the circuit is too deep")

        def run(data=None, params=None):
            helper()
        """,
    )
    run = run_runner(code)
    assert assert_error(run, "EXECUTION_ERROR") == "ValueError: the circuit is too deep"
    assert "Traceback (most recent call last)" in run.stderr
    assert "in helper" in run.stderr
    assert "Traceback" not in run.stdout


def test_user_defined_exception_is_named_with_its_module(tmp_path):
    code = write_program(
        tmp_path,
        """
        class BackendError(Exception):
            pass

        def run(data=None, params=None):
            raise BackendError("no backend")
        """,
    )
    assert assert_error(run_runner(code), "EXECUTION_ERROR") == "src.program.BackendError: no backend"


def test_sys_exit_in_run_is_an_execution_error(tmp_path):
    code = write_program(tmp_path, "import sys\n\ndef run(data, params):\n    sys.exit(0)\n")
    assert assert_error(run_runner(code), "EXECUTION_ERROR") == "SystemExit: 0"


@pytest.mark.parametrize(
    ("expression", "hint"),
    [("{1, 2}", "set"), ("object()", "object"), ('{"x": float("nan")}', "Out of range float")],
)
def test_unserialisable_result(tmp_path, expression, hint):
    code = write_program(tmp_path, f"def run(data=None, params=None):\n    return {expression}\n")
    detail = assert_error(run_runner(code), "RESULT_NOT_SERIALIZABLE")
    assert hint in detail


def test_to_json_that_does_not_return_json(tmp_path):
    code = write_program(
        tmp_path,
        """
        class ResultResponse:
            def __init__(self):
                self.result = {"a": 1}

            def to_json(self):
                return "not json"

        def run(data=None, params=None):
            return ResultResponse()
        """,
    )
    assert "to_json() did not return JSON" in assert_error(run_runner(code), "RESULT_NOT_SERIALIZABLE")


# --- return values -----------------------------------------------------------------------------

RETURN_OBJECTS = (Path(__file__).resolve().parents[2] / "planqk_template/files/src/libs/return_objects.py").read_text()


def test_error_response_returned_by_user_code_exits_1(tmp_path):
    code = write_program(
        tmp_path,
        """
        from .libs.return_objects import ErrorResponse

        def run(data=None, params=None):
            return ErrorResponse(code="CONNECTION_ERROR", detail="Backend host could not be found.")
        """,
    )
    write_program(tmp_path, RETURN_OBJECTS, module="src/libs/return_objects.py")
    (tmp_path / "src/libs/__init__.py").touch()
    run = run_runner(code)
    assert assert_error(run, "CONNECTION_ERROR", ExitCode.USER_ERROR) == "Backend host could not be found."
    assert run.final.payload == {"code": "CONNECTION_ERROR", "detail": "Backend host could not be found."}


def test_result_response_with_metadata(tmp_path):
    code = write_program(
        tmp_path,
        """
        from .libs.return_objects import ResultResponse

        def run(data=None, params=None):
            return ResultResponse(result={"counts": {"00": 3}}, metadata={"backend": "aer_simulator"})
        """,
    )
    write_program(tmp_path, RETURN_OBJECTS, module="src/libs/return_objects.py")
    (tmp_path / "src/libs/__init__.py").touch()
    assert_result(run_runner(code), {"counts": {"00": 3}}, {"backend": "aer_simulator"})


def test_duck_typed_responses_without_to_json(tmp_path):
    code = write_program(
        tmp_path,
        """
        class Done:
            def __init__(self, result):
                self.result = result

        class Failed:
            code = "MY_CODE"
            detail = "my detail"

        def run(data=None, params=None):
            return Failed() if params.get("fail") else Done([1, 2])
        """,
    )
    assert_result(run_runner(code), [1, 2])
    run = run_runner(code, env={"PARAMS_VALUE": '{"fail": true}', "BASE64_ENCODED": "false"})
    assert assert_error(run, "MY_CODE", ExitCode.USER_ERROR) == "my detail"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [('{"sum": 1}', {"sum": 1}), ('{"result": 1}', {"result": 1}), ("None", None), ("(1, 'a')", [1, "a"])],
)
def test_plain_values_are_the_result(tmp_path, expression, expected):
    code = write_program(tmp_path, f"def run(data=None, params=None):\n    return {expression}\n")
    assert_result(run_runner(code), expected)


def test_numpy_values_are_converted(tmp_path):
    if not runner_can_import("numpy"):
        pytest.skip("numpy is not installed for the runner's interpreter")
    code = write_program(
        tmp_path,
        """
        import numpy as np

        def run(data=None, params=None):
            return {"n": np.int64(3), "x": np.float32(0.5), "array": np.arange(3)}
        """,
    )
    assert_result(run_runner(code), {"n": 3, "x": 0.5, "array": [0, 1, 2]})


# --- logging and output ------------------------------------------------------------------------

LOGGING_PROGRAM = """
import logging

logger = logging.getLogger("user.code")

def run(data=None, params=None):
    logger.debug("a debug message")
    logger.info("an info message")
    logger.warning("a warning")
    return "ok"
"""


def test_log_level_debug_shows_the_runner_and_user_debug_messages_on_stderr(tmp_path):
    run = run_runner(write_program(tmp_path, LOGGING_PROGRAM), env={"LOG_LEVEL": "DEBUG"})
    assert_result(run, "ok")
    assert "a debug message" in run.stderr
    assert "calling src.program:run" in run.stderr
    assert "a debug message" not in run.stdout


def test_log_level_warning_hides_info_messages(tmp_path):
    run = run_runner(write_program(tmp_path, LOGGING_PROGRAM), env={"LOG_LEVEL": "warning"})
    assert_result(run, "ok")
    assert "a warning" in run.stderr
    assert "an info message" not in run.stderr


def test_default_log_level_is_info_and_an_unknown_level_is_reported(tmp_path):
    code = write_program(tmp_path, LOGGING_PROGRAM)
    run = run_runner(code)
    assert "an info message" in run.stderr
    assert "a debug message" not in run.stderr
    run = run_runner(code, env={"LOG_LEVEL": "CHATTY"})
    assert_result(run, "ok")
    assert "unknown LOG_LEVEL 'CHATTY'" in run.stderr


def test_interim_result_lines_printed_by_user_code(tmp_path):
    code = write_program(
        tmp_path,
        """
        import json
        from planqk_runtime import interim_result

        def run(data=None, params=None):
            print("starting")
            print("PlanQK:Job:InterimResult: " + json.dumps({"step": 1}))
            interim_result({"step": 2})
            return {"steps": 2}
        """,
    )
    run = run_runner(code)
    assert_result(run, {"steps": 2})
    kinds = [parse_output_line(line) for line in run.stdout.splitlines()]
    assert kinds == [
        ("log", "starting"),
        ("interim", {"step": 1}),
        ("interim", {"step": 2}),
        ("result", {"result": {"steps": 2}, "metadata": None}),
    ]


def test_a_fake_result_line_printed_by_user_code_is_not_the_final_line(tmp_path):
    code = write_program(
        tmp_path,
        """
        def run(data=None, params=None):
            print('Job:ResultResponse: {"result": {"sum": 1000000}, "metadata": null}')
            raise RuntimeError("the real outcome")
        """,
    )
    run = run_runner(code)
    assert run.stdout.splitlines()[0].startswith("Job:ResultResponse:")
    assert assert_error(run, "EXECUTION_ERROR") == "RuntimeError: the real outcome"
    assert run.final.kind == "error"


def test_a_fake_error_line_then_a_real_result(tmp_path):
    code = write_program(
        tmp_path,
        """
        def run(data=None, params=None):
            print('Job:ErrorResponse: {"code": "FAKE", "detail": "fake"}')
            return {"real": True}
        """,
    )
    run = run_runner(code)
    assert run.final.payload == {"result": {"real": True}, "metadata": None}
    assert run.returncode == 0


def test_output_without_a_trailing_newline_does_not_swallow_the_final_line(tmp_path):
    code = write_program(tmp_path, "def run(data=None, params=None):\n    print('no newline', end='')\n    return 1\n")
    run = run_runner(code)
    assert run.stdout.splitlines() == ["no newline", 'Job:ResultResponse: {"result": 1, "metadata": null}']


def test_stray_threads_cannot_print_after_the_final_line(tmp_path):
    code = write_program(
        tmp_path,
        """
        import threading
        import time

        def chatter():
            while True:
                print('Job:ResultResponse: {"result": "spoofed", "metadata": null}', flush=True)

        def late():
            time.sleep(0.5)
            print("late output")

        def run(data=None, params=None):
            threading.Thread(target=chatter, daemon=True).start()
            threading.Thread(target=late).start()  # not a daemon: the runner must not wait for it
            time.sleep(0.2)
            return "real"
        """,
    )
    run = run_runner(code)
    assert run.returncode == 0
    assert run.final.payload == {"result": "real", "metadata": None}
    assert run.stdout.endswith('Job:ResultResponse: {"result": "real", "metadata": null}\n')
    assert "late output" not in run.stdout


def test_exactly_one_final_line_and_nothing_after_it(echo):
    run = run_runner(echo)
    finals = [line for line in run.stdout.splitlines() if parse_output_line(line)[0] in ("result", "error")]
    assert len(finals) == 1
    assert run.stdout.endswith(finals[0] + "\n")


# --- the protocol's pure functions, as the platform uses them ----------------------------------


def test_parse_output_line_kinds():
    from planqk_runtime.protocol import parse_output_line as parse

    assert parse('Job:ResultResponse: {"result": {"sum": 1}, "metadata": null}\r\n') == (
        "result",
        {"result": {"sum": 1}, "metadata": None},
    )
    assert parse('Job:ErrorResponse: {"code": "X", "detail": "y"}') == ("error", {"code": "X", "detail": "y"})
    assert parse("PlanQK:Job:InterimResult: [1, 2]\n") == ("interim", [1, 2])
    # A marker without a well-formed payload is only log output.
    assert parse("Job:ResultResponse: {oops") == ("log", "Job:ResultResponse: {oops")
    assert parse('Job:ErrorResponse: {"detail": "no code"}')[0] == "log"
    assert parse('Job:ResultResponse: {"metadata": null}')[0] == "log"
    assert parse("hello") == ("log", "hello")


def test_final_response_reads_only_the_last_line():
    from planqk_runtime.protocol import final_response

    spoof = 'Job:ResultResponse: {"result": "fake", "metadata": null}'
    real = 'Job:ErrorResponse: {"code": "EXECUTION_ERROR", "detail": "ValueError: x"}'
    assert final_response(f"{spoof}\nlog\n{real}\n\n").payload["code"] == "EXECUTION_ERROR"
    assert final_response([spoof, real]).succeeded is False
    # The runner never answered (killed): a marker earlier in the output does not count.
    assert final_response(f"{spoof}\nKilled\n") is None
    assert final_response("") is None


def test_a_returned_object_whose_attributes_raise(tmp_path):
    code = write_program(
        tmp_path,
        """
        class Weird:
            @property
            def result(self):
                raise RuntimeError("no result today")

        def run(data=None, params=None):
            return Weird()
        """,
    )
    detail = assert_error(run_runner(code), "RESULT_NOT_SERIALIZABLE")
    assert "RuntimeError: no result today" in detail
