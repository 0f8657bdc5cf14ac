"""The go that hands a warm runner its execution: any size of variables gets through, and a
runner whose supervisor does not read it is given up (the execution starts cold) instead of
hanging the worker."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimes.local import executions as local_executions

from .conftest import RuntimeUnderTest, warm_runtime_under_test

ECHO = """
import os
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    big = os.environ.get("BIG", "")
    return ResultResponse(result={"length": len(big), "tail": big[-8:]})
"""


@pytest.fixture(scope="module")
def warm() -> Iterator[RuntimeUnderTest]:
    yield from warm_runtime_under_test("warm-go")


def test_variables_larger_than_a_pipe_buffer_reach_the_warm_runner(warm: RuntimeUnderTest) -> None:
    # 100 KB: more than the FIFO holds (64 KB), so the take must wait for the supervisor to read;
    # less than one exec() argument may be (128 KB), so a cold start could pass it too.
    big = "v" * (100 * 1024 - 8) + "12345678"
    state, output, final = warm.run(warm.build(ECHO), env={"BIG": big})
    assert state.exit_code == 0, output
    assert final is not None
    assert final.payload["result"] == {"length": len(big), "tail": "12345678"}


def test_a_runner_whose_supervisor_stalls_is_given_up_and_the_execution_starts_cold(
    warm: RuntimeUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = warm.build(ECHO)
    pool = warm.runtime.warm  # type: ignore[attr-defined]
    spec_limits = {"memory_mb": 256, "cpus": 1.0, "timeout_seconds": 60, "max_pids": 64, "max_output_bytes": 1 << 20}
    from runtimes.base import ExecutionSpec

    probe = ExecutionSpec(execution_id="probe-stall", build=build, data={}, params={}, env={}, **spec_limits)
    assert warm.runtime.prewarm(probe, wait_seconds=60) > 0  # type: ignore[attr-defined]
    stalled = []
    for shape in pool.state():
        for runner in pool._ready(pool.warm_dir / shape["shape"]):
            handle = pool._handle(runner)
            # A stopped supervisor keeps the FIFO open but reads nothing: a stall, not an end.
            os.kill(handle.pid, signal.SIGSTOP)
            stalled.append(handle)
    assert stalled
    monkeypatch.setattr(local_executions, "GO_WRITE_SECONDS", 0.5)
    try:
        handle = warm.runtime.start(
            ExecutionSpec(
                execution_id="t-stall-cold",
                build=build,
                data={},
                params={},
                env={"BIG": "x" * (100 * 1024)},
                **spec_limits,
            )
        )
        warm.started.append(handle)
        assert handle.warm is False  # type: ignore[attr-defined]
        state = warm.wait(handle)
        assert state.exit_code == 0, (warm.output(handle), (Path(handle.dir) / "supervisor.log").read_text())
        assert warm.runtime.final_response(handle).payload["result"]["length"] == 100 * 1024
    finally:
        for stopped in stalled:
            # The take gave it up and its cleanup killed it; resume it should it still be there.
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped.pid or 0, signal.SIGCONT)
