"""``Runtime.wait`` on every runtime variant: bounded by its timeout, prompt for an ended execution.

The engine calls ``wait`` with the time until its next heartbeat or cancel check, so a ``wait``
that overstays its timeout would delay both; one that sleeps on after the end would delay every
job's final state. The local runtime waits for events, the others on the clock (the default).
"""

from __future__ import annotations

import time

from .conftest import RuntimeUnderTest
from .test_contract import SLEEPER


def test_wait_returns_by_its_timeout_while_the_execution_runs(rt: RuntimeUnderTest) -> None:
    handle = rt.start(rt.build(SLEEPER), params={"seconds": 30})
    try:
        for timeout in (0.0, 0.3, 0.8):
            started = time.monotonic()
            rt.runtime.wait(handle, timeout, offset=10**9)  # no output past that: only the end wakes it
            assert time.monotonic() - started < timeout + 0.5
    finally:
        rt.runtime.cancel(handle)
        rt.runtime.cleanup(handle)


def test_wait_for_an_ended_execution_returns_at_once(rt: RuntimeUnderTest) -> None:
    handle = rt.start(rt.build(SLEEPER), params={"seconds": 0})
    try:
        rt.wait(handle)  # the harness's own polling: it has ended
        started = time.monotonic()
        rt.runtime.wait(handle, 30)
        assert time.monotonic() - started < 1.0
    finally:
        rt.runtime.cleanup(handle)
