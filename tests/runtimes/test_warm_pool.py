"""The warm pool (:mod:`runtimes.local.warm`): how many runners a shape gets, when they go, and
that the pool never hands out what it should not.

Real runners on a real local runtime (bubblewrap, as root with a uid per runner), each case on a
pool of its own: sizing by demand (:func:`target`), the off switch, trimming a shape nobody
calls, a runner that stops itself when nobody takes it, the memory budget, a runner killed while
idle, shapes with other limits, removed versions, the orphan reaper and the pool's reports.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtimes.base import ExecutionSpec
from runtimes.local import supervisor as sup
from runtimes.local.handles import WarmConfig
from runtimes.local.sandbox import uids_running
from runtimes.local.warm import BURST_SECONDS, WarmPool, target

from .conftest import RuntimeUnderTest, execution_spec, warm_runtime_under_test


def test_target_follows_recent_demand_within_the_minimum_and_the_maximum() -> None:
    config = WarmConfig(enabled=True, min_runners=1, max_runners=3, idle_seconds=600)
    now = 10_000.0
    assert target([], now, config) == 0  # never called
    assert target([now - 601], now, config) == 0  # not called for idle_seconds
    assert target([now - 599], now, config) == 1  # called lately, not in a burst: the minimum
    assert target([now - 1], now, config) == 1
    assert target([now - 1, now - 2], now, config) == 2  # a burst: one runner per call
    assert target([now - i * 0.1 for i in range(20)], now, config) == 3  # up to the maximum
    # Only calls within BURST_SECONDS count as concurrent demand.
    assert target([now - BURST_SECONDS - 1] * 5 + [now], now, config) == 1
    assert target([now - 1] * 3, now, WarmConfig(enabled=False, min_runners=1, max_runners=3)) == 0
    lazy = WarmConfig(enabled=True, min_runners=0, max_runners=2, idle_seconds=600)
    assert target([now - 100], now, lazy) == 0  # no minimum and no burst: nothing kept
    assert target([now - 1], now, lazy) == 1


@pytest.fixture
def make_pool() -> Iterator[Callable[..., RuntimeUnderTest]]:
    """A warm runtime with the pool settings a test asks for (removed afterwards)."""
    made: list[Iterator[RuntimeUnderTest]] = []

    def make(**pool: Any) -> RuntimeUnderTest:
        body = warm_runtime_under_test(f"warm-pool-{secrets.token_hex(3)}", **pool)
        made.append(body)
        return next(body)

    yield make
    for body in made:
        next(body, None)


def _spec(build: Any, **limits: Any) -> ExecutionSpec:
    return execution_spec(build, **{"data": {"values": [1, 2]}, **limits})


def _pool(rt: RuntimeUnderTest) -> WarmPool:
    return rt.runtime.warm  # type: ignore[attr-defined]


def _shapes(rt: RuntimeUnderTest) -> list[Path]:
    warm_dir = _pool(rt).warm_dir
    return sorted(p for p in warm_dir.iterdir() if p.is_dir()) if warm_dir.is_dir() else []


def _entries(shape: Path, kind: str) -> list[str]:
    folder = shape / kind
    return sorted(e.name for e in os.scandir(folder)) if folder.is_dir() else []


def _one_ready(rt: RuntimeUnderTest, build: Any, **limits: Any) -> tuple[Path, str]:
    """Prewarm the shape of ``build`` with ``limits`` (the pool's only one) until its one runner
    is ready; that shape's folder and the runner."""
    assert rt.runtime.prewarm(_spec(build, **limits), wait_seconds=60) == 1
    (shape,) = _shapes(rt)
    (runner,) = _entries(shape, "ready")
    return shape, runner


def _slot(rt: RuntimeUnderTest, runner: str) -> dict[str, Any]:
    return json.loads((rt.runtime.executions_dir / runner / "handle.json").read_text())  # type: ignore[attr-defined]


def _claimed(rt: RuntimeUnderTest, name: str) -> bool:
    """Whether a uid claim names ``name`` (a runner or an execution)."""
    claims = rt.runtime.sandbox.uids().claims_dir  # type: ignore[attr-defined]
    for entry in os.scandir(claims):
        if entry.name.isdigit():
            try:
                if Path(entry.path).read_text().splitlines()[0] == name:
                    return True
            except (OSError, IndexError):
                continue
    return False


def _until(condition: Callable[[], bool], limit: float, what: str) -> None:
    give_up = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < give_up, what
        time.sleep(0.05)


def _run(rt: RuntimeUnderTest, spec: ExecutionSpec) -> Any:
    handle = rt.runtime.start(spec)
    rt.started.append(handle)
    state = rt.wait(handle)
    final = rt.runtime.final_response(handle)
    assert final is not None, rt.output(handle)
    assert final.payload["result"] == {"sum": sum(spec.data["values"])}
    assert state.exit_code == 0
    return handle


def _marked(data_dir: Path) -> list[int]:
    """Processes of runners of this data folder (their marker starts with ``warm-``)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                environ = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(v.startswith(b"PLANQK_EXECUTION_ID=warm-") for v in environ) and any(
                str(data_dir).encode() in v for v in environ
            ):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the pool is checked as root")
class TestPool:
    def test_with_warm_execution_off_nothing_is_warm_and_no_runner_runs(self, make_pool: Any) -> None:
        rt = make_pool(enabled=False)
        build = rt.build()
        assert rt.runtime.prewarm(_spec(build), wait_seconds=2) == 0
        for _ in range(2):
            handle = _run(rt, _spec(build))
            assert not handle.warm
        time.sleep(0.5)  # a refill would have started by now
        assert _shapes(rt) == []
        data_dir = Path(rt.config["data_dir"])
        assert not [p for p in (data_dir / "executions").iterdir() if p.name.startswith("warm-")]
        assert _marked(data_dir) == []
        assert _pool(rt).summary() == "off (every execution starts cold)"

    def test_a_shape_not_called_for_idle_seconds_is_trimmed_with_its_folder(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1)
        build = rt.build()
        shape, runner = _one_ready(rt, build)
        slot = _slot(rt, runner)
        assert _pool(rt).trim() == {"stopped": 0, "cleaned": 0}  # called just now: kept
        # Its last call is older than idle_seconds now.
        (shape / "calls").write_text(f"{time.time() - 61:.3f}\n")
        assert _pool(rt).trim()["stopped"] == 1
        assert not shape.exists()
        assert not sup.proc_alive(slot["pid"], slot["start_time"])
        assert not (rt.runtime.executions_dir / runner).exists()  # type: ignore[attr-defined]
        assert not _claimed(rt, runner)

    def test_a_runner_nobody_takes_stops_itself_and_trim_cleans_it(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1, idle_seconds=2)
        build = rt.build()
        shape, runner = _one_ready(rt, build)
        slot = _slot(rt, runner)
        runner_dir = rt.runtime.executions_dir / runner  # type: ignore[attr-defined]
        _until(lambda: (runner_dir / sup.EXIT_FILE).exists(), 20, "the idle runner did not stop")
        # exit.json is its supervisor's last word: it exits a moment later.
        _until(lambda: not sup.proc_alive(slot["pid"], slot["start_time"]), 5, "its supervisor did not exit")
        assert (runner_dir / sup.STOP_FILE).read_text() == "warm-idle"
        assert _entries(shape, "ready") == []  # no taker can find it any more
        assert not any(_marked(Path(rt.config["data_dir"])))
        assert _pool(rt).trim()["cleaned"] == 1
        assert not runner_dir.exists()
        assert not _claimed(rt, runner)
        assert not shape.exists()  # nobody called it for idle_seconds either

    def test_a_shape_whose_runner_stopped_itself_is_refilled_at_its_next_call_without_a_trim(
        self, make_pool: Any
    ) -> None:
        # Its entry stays until a trim; counted as a runner, it kept the shape from refilling
        # (the next calls all cold until the host's housekeeping came by).
        rt = make_pool(max_runners=1, idle_seconds=2)
        build = rt.build()
        shape, runner = _one_ready(rt, build)
        slot = _slot(rt, runner)
        _until(lambda: not sup.proc_alive(slot["pid"], slot["start_time"]), 20, "the idle runner did not stop")
        assert _entries(shape, "runners") == [runner]
        assert rt.runtime.prewarm(_spec(build), wait_seconds=60) == 1
        assert runner not in _entries(shape, "runners")
        handle = _run(rt, _spec(build))
        assert handle.warm

    def test_the_memory_budget_bounds_refills_and_trim_stops_idle_runners_over_it(self, make_pool: Any) -> None:
        rt = make_pool(min_runners=2, max_runners=2, memory_mb=1)
        build = rt.build()
        # The first runner of a shape starts while anything is left; no second one fits.
        assert rt.runtime.prewarm(_spec(build), wait_seconds=60) == 1
        (shape,) = _shapes(rt)
        assert len(_entries(shape, "runners")) == 1
        assert _pool(rt).refill(shape.name) == 0
        assert len(_entries(shape, "runners")) == 1
        (runner,) = _entries(shape, "ready")
        slot = _slot(rt, runner)
        assert _pool(rt).trim()["stopped"] == 1
        assert _entries(shape, "ready") == []
        assert not sup.proc_alive(slot["pid"], slot["start_time"])
        assert not _claimed(rt, runner)

    def test_a_runner_killed_while_idle_is_skipped_and_the_execution_starts_cold(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1)
        build = rt.build()
        _shape, runner = _one_ready(rt, build)
        slot = _slot(rt, runner)
        os.kill(slot["pid"], signal.SIGKILL)
        _until(lambda: not sup.proc_alive(slot["pid"], slot["start_time"]), 10, "the supervisor survived SIGKILL")
        handle = _run(rt, _spec(build))
        assert not handle.warm
        assert not (rt.runtime.executions_dir / runner).exists()  # type: ignore[attr-defined]
        assert not _claimed(rt, runner)
        # Nothing of it runs any more (without bubblewrap its runner outlived the supervisor).
        assert slot["uid"] not in uids_running()

    def test_other_limits_never_take_a_runner_of_another_shape(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1)
        build = rt.build()
        shape, runner = _one_ready(rt, build, memory_mb=256)
        for other in ({"memory_mb": 200}, {"timeout_seconds": 30}, {"max_pids": 32}, {"max_output_bytes": 4096}):
            handle = _run(rt, _spec(build, **other))
            assert not handle.warm, other
            assert _entries(shape, "ready") == [runner], other
        handle = _run(rt, _spec(build, memory_mb=256))
        assert handle.warm
        assert handle.marker == runner

    def test_a_runner_started_by_older_platform_code_is_never_taken(self, make_pool: Any) -> None:
        # An upgrade changes the runner or the supervisor; a warm runner has the old code in memory.
        rt = make_pool(max_runners=1)
        build = rt.build()
        shape, runner = _one_ready(rt, build)
        pool = _pool(rt)
        current = pool.runner()
        pool.runner = lambda: f"{current}:upgraded"
        handle = _run(rt, _spec(build))
        assert not handle.warm
        assert _entries(shape, "ready") == [runner]  # left to idle out (or the next trim)

    def test_removing_a_version_stops_its_runners_and_forgets_its_demand(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1)
        build = rt.build()
        kept = rt.build("def run(data=None, params=None):\n    return {'kept': True}\n")
        assert rt.runtime.prewarm(_spec(build), wait_seconds=60) == 1
        assert rt.runtime.prewarm(_spec(kept), wait_seconds=60) == 1
        by_version = {s["version_id"]: s for s in _pool(rt).state()}
        shape = _pool(rt).warm_dir / by_version[build.version_id]["shape"]
        (runner,) = _entries(shape, "ready")
        slot = _slot(rt, runner)
        assert _pool(rt).stop_versions({build.version_id}) == 1
        assert _entries(shape, "ready") == []
        assert not (shape / "calls").exists()
        assert not sup.proc_alive(slot["pid"], slot["start_time"])
        _pool(rt).trim()
        assert not shape.exists()
        # The other version's runner is untouched.
        assert {s["version_id"]: s["ready"] for s in _pool(rt).state()} == {kept.version_id: 1}

    def test_the_orphan_reaper_never_sees_idle_runners_and_leaves_the_pool_intact(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1)
        build = rt.build()
        shape, runner = _one_ready(rt, build)
        # A real orphan next to it: a cold execution of another shape nobody knows of.
        left = rt.runtime.start(_spec(build, memory_mb=200, params={}))
        rt.started.append(left)
        orphans = rt.runtime.orphans(set())
        assert [o.execution_id for o in orphans] == [left.execution_id]
        # What housekeeping does with them (jobs.engine.job_reap_orphans).
        for orphan in orphans:
            rt.runtime.kill_orphan(orphan)
        assert _entries(shape, "ready") == [runner]
        assert sup.proc_alive(_slot(rt, runner)["pid"], _slot(rt, runner)["start_time"])
        handle = _run(rt, _spec(build))
        assert handle.warm
        assert handle.marker == runner

    def test_state_and_summary_report_ready_runners_and_their_memory(self, make_pool: Any) -> None:
        rt = make_pool(max_runners=1, memory_mb=512)
        build = rt.build()
        before = time.time()
        assert rt.runtime.prewarm(_spec(build), wait_seconds=60) == 1
        (state,) = _pool(rt).state()
        assert state["version_id"] == build.version_id
        assert state["ready"] == 1
        assert state["starting"] == 0
        assert state["target"] == 1
        assert state["memory_kb"] > 1024, state  # a sandbox and an interpreter: megabytes
        assert before <= state["last_call"] <= time.time()
        summary = _pool(rt).summary()
        assert summary.startswith("on: 1-1 single-use runners per version called in the last 60 s, 512 MB for all")
        assert f"now 1 ready for 1 version(s), {state['memory_kb'] / 1024:.0f} MB" in summary
        assert rt.runtime.describe()["warm"] == summary


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the pool is checked as root")
def test_a_trim_while_a_runner_starts_keeps_it_in_the_pool(make_pool: Any) -> None:
    """Housekeeping trims while a worker's refill is starting a runner (here it waits for the
    host's uid lock, which another worker holds while it frees a uid): the trim must not take
    the runner for one that ended, or the pool loses track of it (it is not counted against the
    maximum or the memory budget, and once it stops itself its folder and uid are never freed)."""
    rt = make_pool(max_runners=1, idle_seconds=3)
    build = rt.build()
    pool = _pool(rt)
    claims = rt.runtime.sandbox.uids().claims_dir  # type: ignore[attr-defined]
    lock = os.open(claims / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    trimmed: dict[str, Any] = {}
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The shape's first call: its refill starts a runner, and waits for the uid lock.
        refill = threading.Thread(target=rt.runtime.prewarm, args=(_spec(build),), kwargs={"wait_seconds": 60})
        refill.start()
        _until(lambda: bool(_shapes(rt)) and bool(_entries(_shapes(rt)[0], "runners")), 30, "no refill began")
        (shape,) = _shapes(rt)
        (starting,) = _entries(shape, "runners")
        trim = threading.Thread(target=lambda: trimmed.update(pool.trim()))
        trim.start()
        trim.join(1)
    finally:
        os.close(lock)  # the other worker is done
    refill.join(60)
    trim.join(60)
    assert trimmed == {"stopped": 0, "cleaned": 0}
    _until(lambda: _entries(shape, "ready") == [starting], 30, "the new runner did not get ready")
    assert _entries(shape, "runners") == [starting]
    # Nobody takes it: it stops itself, and the next trim frees its folder and its uid.
    runner_dir = rt.runtime.executions_dir / starting  # type: ignore[attr-defined]
    _until(lambda: (runner_dir / sup.EXIT_FILE).exists(), 30, "the runner did not stop itself")
    assert pool.trim()["cleaned"] == 1
    assert not runner_dir.exists()
    assert not _claimed(rt, starting)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the pool is checked as root")
def test_a_trim_never_cleans_an_execution_through_its_runners_name(make_pool: Any) -> None:
    """Between the take (the runner's folder renamed, its name a link to the execution's folder)
    and the taker dropping the runner from the shape's list, the list still names it. A trim
    then must not follow the name and clean up the execution (here it has even ended already,
    as a trim that comes late finds it): the execution's folder and result are its worker's."""
    rt = make_pool(max_runners=1)
    build = rt.build()
    assert rt.runtime.prewarm(_spec(build), wait_seconds=60) == 1
    (shape,) = _shapes(rt)
    handle = _run(rt, _spec(build))
    assert handle.warm
    # The moment of the take, as another process's trim may see it.
    (shape / "runners" / handle.marker).touch()
    assert os.path.islink(rt.runtime.executions_dir / handle.marker)  # type: ignore[attr-defined]
    assert _pool(rt).trim()["cleaned"] == 1  # the entry goes...
    assert Path(handle.dir).is_dir()  # ... the execution stays
    final = rt.runtime.final_response(handle)
    assert final is not None
    assert final.payload["result"] == {"sum": 3}
    rt.runtime.cleanup(handle)
    assert not os.path.lexists(rt.runtime.executions_dir / handle.marker)  # type: ignore[attr-defined]
