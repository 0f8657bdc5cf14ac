"""The local runtime's ``wait``: woken by the execution (its end, its output), not by a clock.

Each case fails with the base class's clock ``wait`` (which returns after the poll interval
whatever happened): a wait for the end returns only at the end, a wait for output only when
there is some, a supervisor killed without a word still ends the wait (its pidfd), and a fresh
runtime object (a restarted worker) waits on the stored handle alone.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimes.local import LocalRuntime
from runtimes.local.waiter import OUTPUT_WAKE_GAP_SECONDS

from .conftest import RuntimeUnderTest, local_runtime, local_runtime_under_test, warm_runtime_under_test

GAP = OUTPUT_WAKE_GAP_SECONDS or 0.02

pytestmark = pytest.mark.slow

QUIET = """
import time
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    time.sleep(params.get("seconds", 1))
    return ResultResponse(result={"slept": params.get("seconds", 1)})
"""

TALKER = """
import sys, time
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    print("hello", flush=True)
    time.sleep(params.get("then", 3))
    end = time.monotonic() + params.get("chatter", 0)
    while time.monotonic() < end:
        sys.stdout.write("x\\n")
        sys.stdout.flush()
        time.sleep(0.001)
    return ResultResponse(result={"ok": True})
"""


@pytest.fixture(scope="module", params=["cold", "warm"])
def local(request: pytest.FixtureRequest) -> Iterator[RuntimeUnderTest]:
    # Warm: every start takes a runner that imported its code before (it must be woken the same).
    if request.param == "warm":
        yield from warm_runtime_under_test("local-wait-warm")
    else:
        yield from local_runtime_under_test("local-wait")


def _fresh(local: RuntimeUnderTest) -> LocalRuntime:
    """What a restarted worker builds: a new runtime object on the same data folder."""
    return local_runtime({key: value for key, value in local.config.items() if key != "kind"})


def test_a_wait_for_the_end_returns_at_the_end_not_before(local: RuntimeUnderTest) -> None:
    handle = local.start(local.build(QUIET), params={"seconds": 1})
    # A restarted worker: another runtime object, the handle as the database stores it.
    runtime = _fresh(local)
    stored = runtime.execution_handle(json.loads(json.dumps(handle.to_json())))
    started = time.monotonic()
    runtime.wait(stored, 30)
    waited = time.monotonic() - started
    state = runtime.poll(stored)
    assert not state.running, f"wait returned after {waited:.3f}s while the execution still ran"
    assert state.exit_code == 0
    assert waited < 10


def test_a_wait_for_output_returns_when_there_is_some_and_not_otherwise(local: RuntimeUnderTest) -> None:
    runtime = local.runtime
    handle = local.start(local.build(TALKER), params={"then": 4})
    deadline = time.monotonic() + 30
    text, offset = "", 0
    while "hello\n" not in text:  # print() writes the text and the newline apart
        runtime.wait(handle, 30, offset=offset)
        chunk, offset = runtime.read_output(handle, offset)
        text += chunk
        assert time.monotonic() < deadline, text
    # Everything printed so far is read: the next wait sleeps its whole timeout.
    started = time.monotonic()
    runtime.wait(handle, 0.6, offset=offset)
    assert time.monotonic() - started >= 0.5
    assert runtime.poll(handle).running
    # Without an offset output does not wake it either; the end does.
    started = time.monotonic()
    runtime.wait(handle, 30)
    assert not runtime.poll(handle).running
    assert time.monotonic() - started < 15


def test_a_chatty_program_wakes_its_follower_at_a_bounded_rate(local: RuntimeUnderTest) -> None:
    runtime = local.runtime
    handle = local.start(local.build(TALKER), params={"then": 0, "chatter": 1.5})
    offset, wakes = 0, 0
    started = time.monotonic()
    while runtime.poll(handle).running:
        runtime.wait(handle, 5, offset=offset)
        _, offset = runtime.read_output(handle, offset)
        wakes += 1
        assert time.monotonic() - started < 30
    elapsed = time.monotonic() - started
    # About one wake per gap while it prints (it prints every millisecond), and one for its end.
    assert wakes <= elapsed / GAP * 1.5 + 5, (wakes, elapsed)
    assert wakes >= 10, wakes


def test_a_supervisor_killed_without_a_word_ends_the_wait(local: RuntimeUnderTest) -> None:
    # Two wake-ups see it: the supervisor's pidfd, and output.log closed by its last writer.
    handle = local.start(local.build(QUIET), params={"seconds": 60})
    runtime = _fresh(local)
    # Its first look opens the supervisor's pidfd; the kill comes while it waits.
    runtime.wait(handle, 0.2)
    assert runtime.poll(handle).running
    os.kill(handle.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    started = time.monotonic()
    runtime.wait(handle, 30)
    assert time.monotonic() - started < 5
    state = runtime.poll(handle)
    assert not state.running
    assert state.exit_code is None


def test_a_handle_naming_another_folder_is_not_watched(local: RuntimeUnderTest) -> None:
    handle = local.start(local.build(QUIET), params={"seconds": 5})
    runtime = _fresh(local)
    escaping = f"../{Path(handle.dir).parent.name}/{handle.execution_id}"  # type: ignore[attr-defined]
    for edited in (
        runtime.execution_handle({**handle.to_json(), "dir": "/etc"}),
        # An id with a way out whose folder is the one it names: still not a plain name.
        runtime.execution_handle(
            {**handle.to_json(), "execution_id": escaping, "dir": str(runtime.executions_dir / escaping)}
        ),
    ):
        started = time.monotonic()
        runtime.wait(edited, 5)
        # The clock instead: it returns after the poll interval, and nothing outside was watched.
        assert time.monotonic() - started < 1
        assert runtime.executions.waiter._watches == {}
    runtime.wait(handle, 0.05)
    assert list(runtime.executions.waiter._watches) == [handle.execution_id]
    runtime.cleanup(handle)
    assert runtime.executions.waiter._watches == {}
