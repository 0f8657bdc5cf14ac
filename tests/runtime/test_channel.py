"""The runner's result channel (planqk_runtime.channel), with a real runner process and a real pipe."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from planqk_runtime.channel import (
    RESULT_TOO_LARGE,
    ResponseCollector,
    collect,
    drain,
    pipe_for_runner,
)
from planqk_runtime.protocol import FinalResponse
from tests.runtime.helpers import ROOT, run_runner, runner_python, write_program


@dataclass
class ChannelRun:
    returncode: int
    stdout: str
    stderr: str
    response: FinalResponse | None
    raw: bytes  # everything that arrived on the pipe until its last writer closed it


class _Recording(ResponseCollector):
    """A collector that also keeps every byte it was fed."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes=max_bytes)
        self.raw = bytearray()

    def feed(self, data: bytes) -> None:
        self.raw += data
        super().feed(data)


def run_with_channel(code_dir: Path, *, max_bytes: int = 64 << 20) -> ChannelRun:
    """`python -m planqk_runtime` as the platform starts it: with a result pipe."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_VALUE", "PARAMS_VALUE", "ENTRY_POINT")}
    env["PYTHONPATH"] = str(ROOT)
    env["INPUT_DIR"] = str(code_dir / "no-input")
    read_fd, write_fd, env = pipe_for_runner(env)
    out, err = open(code_dir / "out", "w+b"), open(code_dir / "err", "w+b")  # noqa: SIM115
    with out, err:
        process = subprocess.Popen(
            [runner_python(), "-m", "planqk_runtime"],
            cwd=code_dir,
            env=env,
            stdout=out,
            stderr=err,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        collector = _Recording(max_bytes=max_bytes)
        collect(read_fd, collector, done=lambda: process.poll() is not None)
        raw = collector.raw
        os.set_blocking(read_fd, True)
        while chunk := os.read(read_fd, 1 << 16):  # until every holder of the write end is gone
            raw += chunk
        os.close(read_fd)
        out.seek(0)
        err.seek(0)
        return ChannelRun(process.wait(), out.read().decode(), err.read().decode(), collector.response(), bytes(raw))


def test_the_runner_answers_on_the_channel_and_keeps_the_line_in_the_log(tmp_path: Path) -> None:
    code = write_program(
        tmp_path,
        """
        import os, subprocess, sys

        def run(data=None, params=None):
            child = subprocess.run(
                [sys.executable, "-c", "import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"],
                close_fds=False, capture_output=True, text=True,
            )
            return {"variable": os.environ.get("PLANQK_RESULT_FD"), "child_fds": child.stdout.strip()}
        """,
    )
    run = run_with_channel(code)
    assert run.returncode == 0, run.stderr
    assert run.response is not None
    assert run.response.payload["result"]["variable"] is None  # user code does not see it
    # An executed child inherits nothing but stdin, stdout and stderr (and its own listdir fd).
    assert run.response.payload["result"]["child_fds"] == "[0, 1, 2, 3]"
    assert run.stdout.splitlines()[-1].startswith("Job:ResultResponse: ")
    assert run.raw.count(b"\n") == 1


def test_a_response_larger_than_a_pipe_buffer_arrives_whole(tmp_path: Path) -> None:
    code = write_program(tmp_path, 'def run(data=None, params=None):\n    return {"big": "x" * (4 << 20)}\n')
    run = run_with_channel(code)
    assert run.returncode == 0, run.stderr
    assert run.response is not None
    assert len(run.response.payload["result"]["big"]) == 4 << 20


def test_a_response_over_the_readers_cap_is_an_error(tmp_path: Path) -> None:
    code = write_program(tmp_path, 'def run(data=None, params=None):\n    return {"big": "x" * (1 << 20)}\n')
    run = run_with_channel(code, max_bytes=1 << 16)
    assert run.returncode == 0, run.stderr
    assert run.response is not None
    assert run.response.payload["code"] == RESULT_TOO_LARGE


def test_a_fork_returning_through_the_runner_writes_nothing_on_the_channel(tmp_path: Path) -> None:
    code = write_program(
        tmp_path,
        """
        import os

        def run(data=None, params=None):
            pid = os.fork()
            if pid:
                os.waitpid(pid, 0)
            return {"child": pid == 0}
        """,
    )
    run = run_with_channel(code)
    assert run.response is not None
    assert run.response.payload["result"] == {"child": False}
    assert run.raw.count(b"\n") == 1  # the child's runner printed its line on stdout only
    assert '{"result": {"child": true}' in run.stdout


def test_a_program_that_closes_the_channel_loses_its_result_and_the_log_says_why(tmp_path: Path) -> None:
    code = write_program(
        tmp_path,
        """
        import os

        def run(data=None, params=None):
            os.closerange(3, 1 << 16)
            os.open(os.devnull, os.O_WRONLY)  # something else takes the free numbers
            return {"sum": 1}
        """,
    )
    run = run_with_channel(code)
    assert run.response is None
    assert "closed or replaced the result channel" in run.stderr


def test_late_writes_after_the_first_response_are_ignored() -> None:
    collector = ResponseCollector()
    collector.feed(b'Job:ResultResponse: {"result": 1, ')
    assert not collector.complete
    collector.feed(b'"metadata": null}\nJob:ResultResponse: {"result": "forged", "metadata": null}\n')
    collector.feed(b'Job:ErrorResponse: {"code": "FORGED", "detail": ""}\n')
    assert collector.response() == FinalResponse("result", {"result": 1, "metadata": None})


def test_a_first_line_that_is_no_response_is_none_and_not_a_later_one() -> None:
    collector = ResponseCollector()
    collector.feed(b'garbage\nJob:ResultResponse: {"result": "forged", "metadata": null}\n')
    assert collector.response() is None
    unfinished = ResponseCollector()
    unfinished.feed(b'Job:ResultResponse: {"result": 1, "metadata": null}')  # killed before the newline
    assert unfinished.response() is None


def test_drain_reads_what_is_there_without_blocking() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    collector = ResponseCollector()
    assert drain(read_fd, collector) is False
    os.write(write_fd, (json.dumps({"x": 1}) + "\n").encode())
    os.close(write_fd)
    assert drain(read_fd, collector) is True
    os.close(read_fd)
    assert collector.complete


def test_without_a_channel_the_final_stdout_line_is_the_answer(tmp_path: Path) -> None:
    code = write_program(tmp_path, 'def run(data=None, params=None):\n    return {"sum": 1}\n')
    run = run_runner(code)
    assert run.returncode == 0
    assert run.last_line == 'Job:ResultResponse: {"result": {"sum": 1}, "metadata": null}'
