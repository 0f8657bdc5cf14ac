"""The runtime contract: one suite, every runtime (see conftest.py for the variants).

Each test runs real user code on a real runtime and asserts on what a user would see: the
runner's final line, the execution's state and its output.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from runtimes.base import BuildError, BuildSpec

from .conftest import ROOT, RuntimeUnderTest, fresh_runtime, processes_of

pytestmark = pytest.mark.slow

RAISES = """
def run(data=None, params=None):
    print("about to fail")
    raise ValueError("the input was not what I expected")
"""

FORK_UNTIL_REFUSED = """
import os, time
from .libs.return_objects import ErrorResponse, ResultResponse

def run(data=None, params=None):
    forked = 0
    while forked < 10000:
        try:
            pid = os.fork()
        except OSError as exc:
            return ErrorResponse(code="FORK_REFUSED", detail=f"{forked} {exc}")
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        forked += 1
    return ResultResponse(result={"forked": forked})
"""

FORK_BOMB = """
import os

def run(data=None, params=None):
    print("forking", flush=True)
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""

MEMORY_HOG = """
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    hoard = []
    for _ in range(256):
        hoard.append(b"x" * (16 * 1024 * 1024))  # touched, so it is really resident
    return ResultResponse(result={"allocated_mb": 16 * len(hoard)})
"""

ENDLESS = """
def run(data=None, params=None):
    print("looping", flush=True)
    while True:
        pass
"""

NETWORK = """
import errno, socket
from .libs.return_objects import ResultResponse

def attempt(host, port):
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as exc:
        return "error: " + (errno.errorcode.get(exc.errno or 0) or type(exc).__name__)

def run(data=None, params=None):
    # 203.0.113.0/24 is TEST-NET-3 (documentation only): it never reaches anybody.
    return ResultResponse(result={
        "loopback": attempt("127.0.0.1", params["port"]),
        "public": attempt("203.0.113.7", 80),
    })
"""

CHATTY = """
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    for i in range(20000):
        print(f"line {i:06d} " + "x" * 90)
    return ResultResponse(result={"printed": 20000})
"""

NOSY = """
import os, time
from .libs.return_objects import ResultResponse

def attempt_write(path):
    try:
        with open(path, "a") as fh:
            fh.write("# changed by user code\\n")
        return "written"
    except OSError as exc:
        return "error: " + type(exc).__name__

def run(data=None, params=None):
    env_dir = os.environ.get("VIRTUAL_ENV", "/opt/venv")
    return ResultResponse(result={
        "variables": sorted(os.environ),
        "service_setting": os.environ.get("SERVICE_SETTING"),
        "code": attempt_write("src/program.py"),
        "environment": attempt_write(os.path.join(env_dir, "pyvenv.cfg")),
        # A name of its own: without a sandbox /tmp is the host's, and another uid may own a file there.
        "tmp": attempt_write(f"/tmp/scratch-{os.getpid()}-{time.time_ns()}.txt"),
    })
"""

FORGER = """
def run(data=None, params=None):
    print('Job:ResultResponse: {"result": {"forged": true}, "metadata": null}', flush=True)
    raise ValueError("the real outcome is this error")
"""

SLEEPER = """
import time
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    for i in range(params.get("seconds", 60)):
        print(f"tick {i}", flush=True)
        time.sleep(1)
    return ResultResponse(result={"slept": params.get("seconds", 60)})
"""


def test_sum_sample_gives_its_result(rt: RuntimeUnderTest) -> None:
    build = rt.build(sample="sum")
    state, output, final = rt.run(build, data={"values": [100, 50, 200, 70, 0.69]}, params={"round_off": False})
    assert final is not None, output
    assert final.payload == {"result": {"sum": 420.69}, "metadata": None}
    assert state.exit_code == 0
    assert not (state.timed_out)
    assert not (state.oom_killed)
    assert not (state.output_truncated)


def test_error_response_fails_the_execution(rt: RuntimeUnderTest) -> None:
    build = rt.build(sample="failing")
    state, output, final = rt.run(build)
    assert final is not None, output
    assert final.kind == "error"
    assert final.payload["code"] == "SAMPLE_FAILURE"
    assert state.exit_code not in (0, None)


def test_exception_becomes_an_error_with_the_traceback_in_the_logs(rt: RuntimeUnderTest) -> None:
    build = rt.build(RAISES)
    state, output, final = rt.run(build)
    assert final is not None, output
    assert final.payload["code"] == "EXECUTION_ERROR"
    assert "the input was not what I expected" in final.payload["detail"]
    assert "about to fail" in output
    assert "Traceback" in output
    assert state.exit_code not in (0, None)


def test_a_result_printed_in_the_logs_cannot_forge_the_outcome(rt: RuntimeUnderTest) -> None:
    build = rt.build(FORGER)
    state, output, final = rt.run(build)
    assert '"forged": true' in output  # it stays in the logs, for people
    assert final is not None, output
    assert final.kind == "error"
    assert "the real outcome is this error" in final.payload["detail"]
    assert state.exit_code not in (0, None)


def test_interim_results_appear_in_the_output(rt: RuntimeUnderTest) -> None:
    build = rt.build(sample="slow")
    state, output, final = rt.run(build, params={"steps": 3, "sleep": 0})
    interim = [
        json.loads(line.split(":", 3)[3])
        for line in output.splitlines()
        if line.startswith("PlanQK:Job:InterimResult:")
    ]
    assert [item["step"] for item in interim] == [1, 2, 3]
    assert final is not None
    assert final.payload["result"]["steps"] == 3
    assert state.exit_code == 0


@pytest.mark.not_external("nothing is built: the provider installs its own requirements")
def test_requirement_that_does_not_exist_fails_the_build_with_pips_message(rt: RuntimeUnderTest) -> None:
    name = f"planqk-no-such-package-{uuid.uuid4().hex[:8]}"
    folder = rt.user_code(requirements=f"{name}==1.0\n")
    lines: list[str] = []
    with pytest.raises(BuildError) as failure:
        rt.runtime.build(
            BuildSpec(
                version_id=f"test-missing-{uuid.uuid4().hex[:8]}", source_dir=folder, requirements=f"{name}==1.0\n"
            ),
            log=lines.append,
        )
    assert failure.value.user_error is True
    assert failure.value.code == "build:user:requirements"
    assert f"No matching distribution found for {name}" in failure.value.message
    assert any(name in line for line in lines), "the build log streams pip's output"


def unique_six(purpose: str) -> str:
    """``six`` with a marker that holds on every machine: a requirement set no earlier build had.

    Comments do not count (requirements are compared in their canonical form); the marker does.
    """
    return f'six; platform_release != "planqk-{purpose}-{uuid.uuid4().hex[:12]}"\n'


@pytest.mark.not_external("nothing is built: the provider installs its own requirements")
def test_build_honours_cancel(rt: RuntimeUnderTest) -> None:
    requirements = unique_six("cancel")
    folder = rt.user_code(requirements=requirements)
    spec = BuildSpec(version_id=f"test-cancel-{folder.name}", source_dir=folder, requirements=requirements)
    with pytest.raises(BuildError) as failure:
        rt.runtime.build(spec, log=lambda line: None, should_cancel=lambda: True)
    assert failure.value.code == "build:cancelled"
    assert failure.value.user_error is False
    if rt.config["kind"] == "local":
        # Nothing half-built is left to be mistaken for an environment.
        assert not (rt.runtime.envs_dir / rt.runtime.env_key(requirements)).exists()
    else:
        import docker

        with pytest.raises(docker.errors.ImageNotFound):
            rt.runtime.client.images.get(f"planqk-svc-{spec.version_id}")


@pytest.mark.not_external("nothing is built: the provider installs its own requirements")
def test_unchanged_rebuild_reuses_the_environment(rt: RuntimeUnderTest) -> None:
    # A requirement set of its own makes the first build a real one, even with Docker's cache from earlier runs.
    requirements = unique_six("rebuild")
    folder = rt.user_code(requirements=requirements)
    timings = []
    handles = []
    for attempt in range(2):
        lines: list[str] = []
        started = time.monotonic()
        spec = BuildSpec(
            version_id=f"test-rebuild-{attempt}-{folder.name}", source_dir=folder, requirements=requirements
        )
        handles.append(rt.runtime.build(spec, log=lines.append).build)
        timings.append(time.monotonic() - started)
        rt.builds[spec.version_id] = handles[-1]
    print(f"\n{rt.variant}: first build {timings[0]:.1f}s, unchanged rebuild {timings[1]:.1f}s")
    assert handles[0].reused is False
    assert handles[1].reused is True
    if rt.config["kind"] == "local":
        assert handles[0].env_dir == handles[1].env_dir
    _state, output, final = rt.run(handles[1], data={"values": [1, 2]})
    assert final is not None, output
    assert final.payload["result"] == {"sum": 3}


@pytest.mark.not_external("the provider's machine sets its own process limits")
def test_fork_is_refused_at_the_pid_limit(rt: RuntimeUnderTest) -> None:
    build = rt.build(FORK_UNTIL_REFUSED)
    handle = rt.start(build, max_pids=32)
    state = rt.wait(handle)
    final_text = rt.output(handle)
    final = rt.runtime.final_response(handle)
    assert final is not None, final_text
    assert final.payload["code"] == "FORK_REFUSED"
    forked = int(final.payload["detail"].split()[0])
    assert 0 < forked < 32
    assert state.exit_code not in (0, None)
    # The sleeping children went with the execution.
    assert processes_of(handle.execution_id) == []


@pytest.mark.not_external("the provider's machine sets its own process limits")
def test_fork_bomb_is_contained_and_killed_at_the_timeout(rt: RuntimeUnderTest) -> None:
    build = rt.build(FORK_BOMB)
    handle = rt.start(build, max_pids=32, timeout_seconds=4)
    state = rt.wait(handle)
    assert state.timed_out is True
    assert state.exit_code != 0
    assert processes_of(handle.execution_id) == []


@pytest.mark.not_external("the provider's machine sets its own memory limits")
def test_memory_hog_is_stopped(rt: RuntimeUnderTest) -> None:
    build = rt.build(MEMORY_HOG)
    state, output, final = rt.run(build, memory_mb=128)
    assert not (final is not None and final.succeeded), output
    assert state.timed_out is False
    # Either the kernel killed it (cgroup, container) or Python could not allocate (RLIMIT_AS).
    assert state.oom_killed or (final is not None and "MemoryError" in final.payload["detail"]), (state, output)
    if state.oom_killed:
        assert state.exit_code != 0


def test_endless_loop_is_killed_at_the_timeout(rt: RuntimeUnderTest) -> None:
    build = rt.build(ENDLESS)
    handle = rt.start(build, timeout_seconds=3)
    state = rt.wait(handle)
    assert state.timed_out is True
    assert state.running is False
    assert state.exit_code != 0
    assert "looping" in rt.output(handle)


@pytest.mark.not_external("the provider's machine decides its own network")
def test_network_is_unreachable(rt: RuntimeUnderTest) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        build = rt.build(NETWORK)
        _state, output, final = rt.run(build, params={"port": port})
        assert final is not None, output
        assert final.succeeded, output
        result = final.payload["result"]
        assert result["loopback"].startswith("error"), result
        assert result["public"].startswith("error"), result
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing from the sandbox ever arrived
    finally:
        listener.close()


@pytest.mark.not_external("the provider's environment is the provider's")
def test_user_code_sees_its_variables_but_not_the_workers_and_cannot_change_its_code(
    rt: RuntimeUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANQK_TEST_WORKER_SECRET", "must-not-leak")
    build = rt.build(NOSY)
    _state, output, final = rt.run(build, env={"SERVICE_SETTING": "from the service"})
    assert final is not None, output
    result = final.payload["result"]
    assert "PLANQK_TEST_WORKER_SECRET" not in result["variables"]
    assert "DATABASE_URL" not in result["variables"]
    assert result["service_setting"] == "from the service"
    assert result["code"].startswith("error"), result
    assert result["environment"].startswith("error"), result
    assert result["tmp"] == "written"


def test_output_over_the_cap_is_cut(rt: RuntimeUnderTest) -> None:
    build = rt.build(CHATTY)
    cap = 64 * 1024
    handle = rt.start(build, max_output_bytes=cap)
    state = rt.wait(handle)
    text = rt.output(handle)
    assert state.output_truncated is True
    assert len(text.encode()) <= cap
    assert text.startswith("line 000000 ")


def test_cancel_stops_a_running_execution(rt: RuntimeUnderTest) -> None:
    build = rt.build(SLEEPER)
    handle = rt.start(build, params={"seconds": 120})
    give_up = time.monotonic() + 60
    while "tick 1" not in rt.output(handle):
        assert rt.runtime.poll(handle).running
        assert time.monotonic() < give_up
        time.sleep(0.1)
    rt.runtime.cancel(handle)
    state = rt.runtime.poll(handle)  # cancel() returns once the execution has ended
    assert state.running is False
    assert state.cancelled is True
    assert state.exit_code != 0
    assert processes_of(handle.execution_id) == []
    rt.runtime.cancel(handle)  # a second cancel is harmless


def test_restarted_worker_reattaches_with_the_json_handle(rt: RuntimeUnderTest) -> None:
    build = rt.build(SLEEPER)
    # Another process starts the execution and exits, like a worker that dies mid-execution.
    script = textwrap.dedent(
        """
        import json, sys
        from runtimes.base import ExecutionSpec
        from tests.runtimes.conftest import fresh_runtime
        config, build, execution_id = json.loads(sys.stdin.read())
        runtime = fresh_runtime(config)
        spec = ExecutionSpec(
            execution_id=execution_id, build=runtime.build_handle(build), data={}, params={"seconds": 2}, env={},
            memory_mb=256, cpus=1.0, timeout_seconds=60, max_pids=64, max_output_bytes=1 << 20)
        warm = bool(config.get("warm", {}).get("enabled"))
        if warm:  # the warm variants reattach to an execution a warm runner took
            assert runtime.prewarm(spec, wait_seconds=60) > 0
        handle = runtime.start(spec)
        assert getattr(handle, "warm", False) == warm
        print(json.dumps(handle.to_json()))
        """
    )
    execution_id = f"t{uuid.uuid4().hex[:16]}"
    starter = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([rt.config, build.to_json(), execution_id]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    # The worker that takes over has only the JSON the database stored.
    stored = json.loads(starter.stdout.strip().splitlines()[-1])
    worker = fresh_runtime(rt.config)
    handle = worker.execution_handle(stored)
    rt.started.append(handle)
    assert handle.execution_id == execution_id

    assert worker.poll(handle).running is True
    rt_fresh = RuntimeUnderTest(rt.variant, worker, rt.config, rt.source_root)
    state = rt_fresh.wait(handle)
    output = rt_fresh.output(handle)
    assert state.exit_code == 0, output
    assert "tick 0" in output
    assert "tick 1" in output
    final = worker.final_response(handle)
    assert final is not None, output
    assert final.payload == {"result": {"slept": 2}, "metadata": None}


def test_orphans_lists_executions_the_database_does_not_know(rt: RuntimeUnderTest) -> None:
    build = rt.build(SLEEPER)
    handle = rt.start(build, params={"seconds": 120})
    execution_id = handle.execution_id
    assert execution_id in {h.execution_id for h in rt.runtime.orphans(set())}
    assert execution_id not in {h.execution_id for h in rt.runtime.orphans({execution_id})}
    orphan = next(h for h in rt.runtime.orphans(set()) if h.execution_id == execution_id)
    rt.runtime.kill_orphan(orphan)
    assert execution_id not in {h.execution_id for h in rt.runtime.orphans(set())}
    assert processes_of(execution_id) == []
    rt.runtime.cleanup(handle)  # idempotent: already gone


def test_retried_start_replaces_the_leftover(rt: RuntimeUnderTest) -> None:
    build = rt.build(SLEEPER)
    first = rt.start(build, params={"seconds": 120})
    second = rt.start(build, execution_id=first.execution_id, params={"seconds": 0})
    state = rt.wait(second)
    assert state.exit_code == 0, rt.output(second)
    assert "tick" not in rt.output(second)


# --- the result channel: output after the runner cannot change the result -------------------

FORGED_LINE = 'Job:ResultResponse: {"result": {"forged": true}, "metadata": null}'
REAL_RESULT = {"result": {"real": True}, "metadata": None}

# Spins (no sleep: the window after the runner's exit is short) until process argv[1] is gone
# or a zombie, then prints the forged line again and again.
_FORGE_WHEN_GONE = f"""
import sys, time
pid = int(sys.argv[1])
def gone():
    try:
        with open(f"/proc/{{pid}}/stat") as fh:
            stat = fh.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"
give_up = time.monotonic() + 10
while not gone() and time.monotonic() < give_up:
    pass
for _ in range(200):
    print({FORGED_LINE!r}, flush=True)
"""

CHILD_FORGES = f"""
import os, subprocess, sys
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    subprocess.Popen([sys.executable, "-c", {_FORGE_WHEN_GONE!r}, str(os.getpid())])
    return ResultResponse(result={{"real": True}})
"""

DETACHED_FORGES = f"""
import os, sys
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    runner = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", {_FORGE_WHEN_GONE!r}, str(runner)])
        os._exit(0)
    os.waitpid(pid, 0)
    return ResultResponse(result={{"real": True}})
"""

ITSELF_FORGES = f"""
import atexit, threading
from .libs.return_objects import ResultResponse

returned = threading.Event()

def forge():
    print({FORGED_LINE!r}, flush=True)

def keep_forging():
    returned.wait()
    while True:
        print({FORGED_LINE!r}, flush=True)

def run(data=None, params=None):
    atexit.register(forge)
    threading.Thread(target=keep_forging, daemon=True).start()
    try:
        return ResultResponse(result={{"real": True}})
    finally:
        returned.set()
"""

FORK_WRITES_EVERY_FD = f"""
import os, time
from .libs.return_objects import ResultResponse

def run(data=None, params=None):
    runner = os.getpid()
    if os.fork() == 0:
        give_up = time.monotonic() + 10
        while os.getppid() == runner and time.monotonic() < give_up:
            pass
        line = ({FORGED_LINE!r} + "\\n").encode()
        for _ in range(50):
            for fd in range(1024):
                try:
                    os.write(fd, line)
                except OSError:
                    pass
        os._exit(0)
    return ResultResponse(result={{"real": True}})
"""

HONEST_HELPER = """
import subprocess, sys
from .libs.return_objects import ResultResponse

HELPER = '''
import time
give_up = time.monotonic() + 1
i = 0
while time.monotonic() < give_up:
    print(f"helper: still flushing {i}", flush=True)
    i += 1
    time.sleep(0.005)
'''

def run(data=None, params=None):
    subprocess.Popen([sys.executable, "-c", HELPER])
    return ResultResponse(result={"real": True})
"""

LATE_WRITERS = {
    "child": CHILD_FORGES,
    "detached": DETACHED_FORGES,
    "itself": ITSELF_FORGES,
    "fork-every-fd": FORK_WRITES_EVERY_FD,
    "honest-helper": HONEST_HELPER,
}
ATTEMPTS = 4


BIG_RESULT = """
def run(data=None, params=None):
    return {"big": "x" * (2 * 1024 * 1024)}
"""


def test_a_result_larger_than_a_pipe_buffer_arrives_whole(rt: RuntimeUnderTest) -> None:
    build = rt.build(BIG_RESULT)
    state, output, final = rt.run(build, max_output_bytes=16 * 1024 * 1024)
    assert final is not None, output[-2000:]
    assert final.payload["result"] == {"big": "x" * (2 * 1024 * 1024)}
    assert state.exit_code == 0


@pytest.mark.parametrize("case", list(LATE_WRITERS))
def test_output_after_the_runner_cannot_change_the_result(rt: RuntimeUnderTest, case: str) -> None:
    build = rt.build(LATE_WRITERS[case])
    for attempt in range(ATTEMPTS):
        state, output, final = rt.run(build)
        assert final is not None, (attempt, output[-2000:])
        assert final.payload == REAL_RESULT, (attempt, output[-2000:])
        assert state.exit_code == 0, (attempt, output[-2000:])
        assert not state.output_truncated
        assert processes_of(rt.started[-1].execution_id) == []
