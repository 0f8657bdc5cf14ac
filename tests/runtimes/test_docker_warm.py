"""Warm containers on the Docker runtime (issue 17, item 4): created ahead, taken once.

Real Docker, real containers, the real runner; nothing is mocked. Each test uses limits of its
own (``memory_mb``...) where it needs a pool of its own: the pool is per build and limits.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from runtimes.base import ExecutionSpec

from .conftest import RuntimeUnderTest, _private_dir, execution_spec

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Everything a second execution could see of a first one, if anything were shared.
PROBE = """
import os, socket, time, uuid
from .libs.return_objects import ResultResponse

IMPORTED_AT = time.time()
SECRET_AT_IMPORT = os.environ.get("WARM_SECRET")
BOOT = uuid.uuid4().hex
CALLS = []

def run(data=None, params=None):
    CALLS.append(data.get("tag"))
    seen_tmp = sorted(os.listdir("/tmp"))
    seen_shm = sorted(os.listdir("/dev/shm"))
    with open(f"/tmp/left-by-{data.get('tag')}", "w") as fh:
        fh.write("x")
    with open(f"/dev/shm/left-by-{data.get('tag')}", "w") as fh:
        fh.write("x")
    if params.get("sleep"):
        time.sleep(params["sleep"])
    return ResultResponse(result={
        "tag": data.get("tag"),
        "secret": os.environ.get("WARM_SECRET"),
        "secret_at_import": SECRET_AT_IMPORT,
        "calls": list(CALLS),
        "boot": BOOT,
        "imported_at": IMPORTED_AT,
        "tmp": seen_tmp,
        "shm": seen_shm,
        "netns": os.readlink("/proc/self/ns/net"),
        "hostname": socket.gethostname(),
        "uid": os.getuid(),
        "pid_ns": os.readlink("/proc/self/ns/pid"),
    })
"""

ENDLESS = """
def run(data=None, params=None):
    print("looping", flush=True)
    while True:
        pass
"""


@pytest.fixture(scope="module")
def warm(base_image: str) -> Iterator[RuntimeUnderTest]:
    from runtimes.docker import DockerConfig, DockerRuntime
    from runtimes.local.handles import WarmConfig

    data = _private_dir("docker-warm")
    source = _private_dir("docker-warm-src")
    config = WarmConfig(enabled=True, min_runners=1, max_runners=2, idle_seconds=600, memory_mb=8192)
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, alarm_grace_seconds=1, warm=config))
    rut = RuntimeUnderTest("docker", runtime, {"kind": "docker", "data_dir": str(data)}, source, version_prefix="dwarm")
    yield rut
    for handle in rut.started:
        runtime.cleanup(handle)
    runtime.warm.stop_all()
    left = _containers_of(runtime)
    for build in rut.builds.values():
        runtime.remove_build(build)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)
    assert left == [], f"warm containers left behind: {left}"


def _containers_of(runtime: Any) -> list[str]:
    """Every container (running or not) this runtime's data folder has, by `docker ps -a`'s filter."""
    from runtimes.docker import LABEL_EXECUTION

    found = []
    for container in runtime.client.containers.list(all=True, filters={"label": LABEL_EXECUTION}):
        mounts = container.attrs.get("Mounts") or []
        if any(str(m.get("Source", "")).startswith(str(runtime.data_dir)) for m in mounts):
            found.append(container.name)
    return found


def _spec(build: Any, **values: Any) -> ExecutionSpec:
    return execution_spec(build, **values)


def _prewarm(rut: RuntimeUnderTest, build: Any, count: int = 1, **limits: Any) -> int:
    ready = rut.runtime.prewarm(_spec(build, **limits), wait_seconds=120)  # type: ignore[attr-defined]
    give_up = time.monotonic() + 120
    while ready < count and time.monotonic() < give_up:
        time.sleep(0.1)
        ready = rut.runtime.prewarm(_spec(build, **limits), wait_seconds=1)  # type: ignore[attr-defined]
    assert ready >= count, f"only {ready} warm container(s) ready"
    return ready


def _run(rut: RuntimeUnderTest, build: Any, **values: Any) -> tuple[Any, Any, dict[str, Any]]:
    handle = rut.start(build, **values)
    state = rut.wait(handle)
    final = rut.runtime.final_response(handle)
    assert final is not None, rut.output(handle)
    return handle, state, final.payload["result"]


def test_a_second_execution_takes_a_warm_container_and_gets_its_own_result(warm: RuntimeUnderTest) -> None:
    build = warm.build(PROBE)
    # The first call is cold and counts as demand: the pool fills in the background.
    first, state, result = _run(warm, build, data={"tag": "first"})
    assert first.warm is False
    assert state.exit_code == 0
    assert result["tag"] == "first"
    warm.runtime.cleanup(first)
    _prewarm(warm, build)
    second, state, result = _run(warm, build, data={"tag": "second"}, env={"WARM_SECRET": "s2"})
    assert second.warm is True
    assert state.exit_code == 0, warm.output(second)
    # Its own input and variables, delivered at the take, not at the container's start.
    assert result["tag"] == "second"
    assert result["secret"] == "s2"
    # Imported before the execution existed: its variables were nowhere yet.
    assert result["secret_at_import"] is None
    assert result["calls"] == ["second"]
    # Imported before the take: that is the point.
    assert result["imported_at"] < second.started_at
    container = warm.runtime.client.containers.get(second.container)
    assert container.name == f"planqk-job-{second.execution_id}"
    # The secret never was in the container's configuration (docker inspect), only in the go.
    assert not any(item.startswith("WARM_SECRET") for item in container.attrs["Config"]["Env"])
    warm.runtime.cleanup(second)
    with pytest.raises(Exception, match=r"No such container|Not Found|404"):
        warm.runtime.client.containers.get(second.container)


def test_a_warm_container_has_the_cold_containers_isolation(warm: RuntimeUnderTest) -> None:
    """One function creates both: the same limits, user, network, read-only root and tmpfs."""
    build = warm.build(PROBE)
    limits = {"memory_mb": 200, "cpus": 0.5, "max_pids": 40, "timeout_seconds": 30}
    cold = warm.start(build, data={"tag": "cold"}, **limits)
    warm.wait(cold)
    _prewarm(warm, build, **limits)
    hot = warm.start(build, data={"tag": "hot"}, **limits)
    assert hot.warm is True
    warm.wait(hot)
    client = warm.runtime.client

    def settings(handle: Any) -> dict[str, Any]:
        attrs = client.containers.get(handle.container).attrs
        host = {k: attrs["HostConfig"][k] for k in ("NetworkMode", "ReadonlyRootfs", "CapDrop", "SecurityOpt")}
        host.update({k: attrs["HostConfig"][k] for k in ("Memory", "MemorySwap", "NanoCpus", "PidsLimit", "Init")})
        host["Tmpfs"] = attrs["HostConfig"]["Tmpfs"]
        host["Ulimits"] = attrs["HostConfig"]["Ulimits"]
        host["LogConfig"] = attrs["HostConfig"]["LogConfig"]
        host["Image"] = attrs["Image"]
        host["WorkingDir"] = attrs["Config"]["WorkingDir"]
        host["Env"] = sorted(attrs["Config"]["Env"])
        host["uid_is_own"] = attrs["Config"]["User"] == f"{handle.uid}:{handle.uid}"
        host["mounts"] = sorted((m["Destination"], m["RW"]) for m in attrs["Mounts"])
        return host

    cold_settings, hot_settings = settings(cold), settings(hot)
    # The warm one has its go socket's folder besides; nothing else differs.
    assert ("/var/run/planqk-warm", True) in hot_settings["mounts"]
    hot_settings["mounts"].remove(("/var/run/planqk-warm", True))
    assert hot_settings == cold_settings
    assert hot_settings["NetworkMode"] == "none"
    assert hot_settings["ReadonlyRootfs"] is True
    assert hot_settings["Memory"] == 200 * 1024 * 1024
    assert hot_settings["uid_is_own"] is True
    assert cold.uid != hot.uid


def test_two_concurrent_warm_executions_share_nothing(warm: RuntimeUnderTest) -> None:
    build = warm.build(PROBE)
    limits = {"memory_mb": 240}
    _prewarm(warm, build, count=2, **limits)
    handles = [
        warm.start(build, data={"tag": tag}, params={"sleep": 2}, env={"WARM_SECRET": tag}, **limits)
        for tag in ("a", "b")
    ]
    assert [h.warm for h in handles] == [True, True]
    results = []
    for handle in handles:
        state = warm.wait(handle)
        assert state.exit_code == 0, warm.output(handle)
        final = warm.runtime.final_response(handle)
        assert final is not None
        results.append(final.payload["result"])
    a, b = results
    assert (a["tag"], a["secret"], b["tag"], b["secret"]) == ("a", "a", "b", "b")
    # Another container, another interpreter (memory state), another uid, network and pid namespace.
    assert handles[0].container_id != handles[1].container_id
    assert a["boot"] != b["boot"]
    assert a["calls"] == ["a"]
    assert b["calls"] == ["b"]
    assert a["uid"] != b["uid"]
    assert a["netns"] != b["netns"]
    assert a["pid_ns"] != b["pid_ns"]
    assert a["hostname"] != b["hostname"]
    # Their writable folders are their own: neither saw what the other left (both ran at once).
    assert not any(name.startswith("left-by-") for name in a["tmp"] + a["shm"] + b["tmp"] + b["shm"])
    assert handles[0].dir != handles[1].dir


def test_state_in_memory_and_tmp_does_not_reach_the_next_execution(warm: RuntimeUnderTest) -> None:
    build = warm.build(PROBE)
    limits = {"memory_mb": 232}
    boots = []
    for tag in ("one", "two", "three"):
        _prewarm(warm, build, **limits)
        handle, _, result = _run(warm, build, data={"tag": tag}, **limits)
        assert handle.warm is True
        assert result["calls"] == [tag]
        assert not any(name.startswith("left-by-") for name in result["tmp"] + result["shm"])
        boots.append(result["boot"])
        warm.runtime.cleanup(handle)
    assert len(set(boots)) == 3


def test_the_timeout_counts_from_the_take(warm: RuntimeUnderTest) -> None:
    build = warm.build(ENDLESS)
    limits = {"memory_mb": 228, "timeout_seconds": 3}
    _prewarm(warm, build, **limits)
    # Idle longer than the timeout plus the container's alarm grace (1 s): counted from the
    # container's start, the deadline would have passed before the take.
    time.sleep(5)
    handle = warm.start(build, **limits)
    assert handle.warm is True
    taken = time.time()
    state = warm.runtime.poll(handle)
    assert state.running, "killed at once: the timeout counted from the container's start"
    # Nobody polls: the container's own alarm (armed at the go) ends it, timeout + grace later.
    container = warm.runtime.client.containers.get(handle.container)
    give_up = time.monotonic() + 60
    while container.status != "exited":
        assert time.monotonic() < give_up, "the warm container outlived its deadline"
        time.sleep(0.2)
        container.reload()
    ended = time.time()
    assert 3 <= ended - taken < 3 + 1 + 5
    state = warm.runtime.poll(handle)
    assert state.timed_out is True
    assert state.exit_code != 0


def test_poll_kills_a_warm_execution_at_its_timeout_from_the_take(warm: RuntimeUnderTest) -> None:
    build = warm.build(ENDLESS)
    limits = {"memory_mb": 226, "timeout_seconds": 2}
    _prewarm(warm, build, **limits)
    time.sleep(3)
    handle = warm.start(build, **limits)
    assert handle.warm is True
    assert warm.runtime.poll(handle).running
    state = warm.wait(handle, limit=30)
    assert state.timed_out is True
    assert time.time() - handle.started_at >= 2


def test_off_switch_starts_every_execution_cold(base_image: str, warm: RuntimeUnderTest) -> None:
    from runtimes.docker import DockerConfig, DockerRuntime

    data = _private_dir("docker-warm-off")
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image))
    try:
        assert runtime.config.warm.enabled is False
        assert runtime.describe()["warm"].startswith("off")
        build = warm.build(PROBE)
        spec = _spec(build, data={"tag": "off"})
        assert runtime.prewarm(spec, wait_seconds=5) == 0
        handle = runtime.start(spec)
        assert handle.warm is False
        assert not (data / "docker-warm").exists()
        while runtime.poll(handle).running:
            time.sleep(0.1)
        final = runtime.final_response(handle)
        assert final is not None
        assert final.payload["result"]["tag"] == "off"
        runtime.cleanup(handle)
        assert _containers_of(runtime) == []
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_a_warm_container_killed_while_idle_is_skipped(warm: RuntimeUnderTest) -> None:
    build = warm.build(PROBE)
    limits = {"memory_mb": 224}
    _prewarm(warm, build, **limits)
    pool = warm.runtime.warm  # type: ignore[attr-defined]
    shape = warm.runtime.warm_shape(_spec(build, **limits))  # type: ignore[attr-defined]
    idle = warm.runtime.client.containers.list(filters={"label": f"planqk.warm={shape}"})
    assert idle
    assert all(_ours(warm, c) for c in idle)
    for container in idle:
        container.kill()
    handle, state, result = _run(warm, build, data={"tag": "after-kill"}, **limits)
    assert handle.warm is False
    assert state.exit_code == 0
    assert result["tag"] == "after-kill"
    # The dead one is gone (removed by the take that skipped it), its uid released.
    for container in idle:
        with pytest.raises(Exception, match=r"No such container|Not Found|404"):
            warm.runtime.client.containers.get(container.id)
    assert all(state["ready"] <= 2 for state in pool.state())  # nothing counted twice


def test_a_listener_that_is_not_the_container_gets_no_go(warm: RuntimeUnderTest) -> None:
    """The container owns its socket's folder: a symlink there to another socket of the host
    must not make the worker send the execution's variables to that socket."""
    import socket

    from runtimes.docker import WARM_DIR, WARM_SOCKET

    build = warm.build(PROBE)
    limits = {"memory_mb": 222}
    _prewarm(warm, build, **limits)
    pool = warm.runtime.warm  # type: ignore[attr-defined]
    folder = pool.warm_dir / warm.runtime.warm_shape(_spec(build, **limits))  # type: ignore[attr-defined]
    (runner,) = pool._ready(folder)
    heard: list[bytes] = []
    decoy_path = _private_dir("docker-warm-decoy") / "decoy.sock"
    decoy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    decoy.bind(str(decoy_path))
    decoy.listen(1)
    decoy.settimeout(5)

    def listen() -> None:
        try:
            connection, _ = decoy.accept()
            heard.append(connection.recv(1 << 16))
        except OSError:
            pass

    thread = threading.Thread(target=listen)
    thread.start()
    sock = warm.runtime.executions_dir / runner / WARM_DIR / WARM_SOCKET
    # What user code of the container could do to its own socket's name.
    os.unlink(sock)
    os.symlink(decoy_path, sock)
    handle, _, result = _run(warm, build, data={"tag": "decoyed"}, env={"WARM_SECRET": "hidden"}, **limits)
    thread.join()
    decoy.close()
    shutil.rmtree(decoy_path.parent, ignore_errors=True)
    assert handle.warm is False
    assert result["tag"] == "decoyed"
    assert not any(b"hidden" in data for data in heard)


def test_another_install_on_the_same_engine_leaves_our_warm_containers_alone(
    base_image: str, warm: RuntimeUnderTest
) -> None:
    """Two installs may share one engine: the other's stop_all (its host shutting down, or warm
    turned off there) sweeps its own strays, never our ready containers."""
    from runtimes.docker import DockerConfig, DockerRuntime
    from runtimes.local.handles import WarmConfig

    build = warm.build(PROBE)
    limits = {"memory_mb": 232}  # a shape of this test's own
    _prewarm(warm, build, **limits)
    ours = _containers_of(warm.runtime)
    assert ours
    other_data = _private_dir("docker-warm-other-install")
    config = WarmConfig(enabled=True, min_runners=1, max_runners=1, idle_seconds=60, memory_mb=1024)
    other = DockerRuntime(DockerConfig(data_dir=other_data, base_image=base_image, warm=config))
    try:
        assert other.warm.stop_all() == 0
        assert set(ours) <= set(_containers_of(warm.runtime))
        handle, _state, result = _run(warm, build, data={"tag": "still-warm"}, **limits)
        assert handle.warm is True, "our warm container was removed by the other install"
        assert result["tag"] == "still-warm"
    finally:
        shutil.rmtree(other_data, ignore_errors=True)


def test_trim_and_stop_all_leave_no_container_behind(base_image: str, warm: RuntimeUnderTest) -> None:
    from runtimes.docker import DockerConfig, DockerRuntime
    from runtimes.local.handles import WarmConfig

    data = _private_dir("docker-warm-trim")
    config = WarmConfig(enabled=True, min_runners=2, max_runners=2, idle_seconds=3, memory_mb=8192)
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, warm=config))
    rut = RuntimeUnderTest("docker", runtime, {"kind": "docker", "data_dir": str(data)}, warm.source_root)
    rut.builds = warm.builds
    try:
        build = warm.build(PROBE)
        assert _prewarm(rut, build, count=2) == 2
        assert len(_containers_of(runtime)) == 2
        summary = runtime.describe()["warm"]
        assert "now 2 ready for 1 version(s)" in summary, summary
        # Idle past idle_seconds: the containers stop themselves and trim removes them and the shape.
        time.sleep(4)
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            counts = runtime.warm.trim()
            if not _containers_of(runtime):
                break
            time.sleep(0.5)
        assert _containers_of(runtime) == []
        assert counts["stopped"] + counts["cleaned"] >= 1
        assert list((data / "docker-warm").iterdir()) == []
        assert not [p for p in (data / "containers").iterdir() if p.name.startswith("warm-")]
        # stop_all removes idle ones at once, and one whose creator died before it was known.
        assert _prewarm(rut, build, count=2) == 2
        stray = runtime.warm_shape(_spec(build))
        folder = data / "docker-warm" / stray / "runners"
        (victim,) = sorted(p.name for p in folder.iterdir())[:1]
        (folder / victim).unlink()  # as if its pool forgot it
        assert runtime.warm.stop_all() >= 1
        assert _containers_of(runtime) == []
        assert runtime.warm.state() == [] or all(s["ready"] == 0 for s in runtime.warm.state())
        # Removing the version forgets its demand: a later trim starts nothing for it.
        assert _prewarm(rut, build, count=1) >= 1
        runtime.warm.stop_versions({build.version_id})
        assert not (data / "docker-warm" / stray / "calls").exists()
        runtime.warm.trim()
        assert _containers_of(runtime) == []
    finally:
        runtime.warm.stop_all()
        left = _containers_of(runtime)
        shutil.rmtree(data, ignore_errors=True)
        assert left == []


SLOW_IMPORT = """
import time
from .libs.return_objects import ResultResponse

time.sleep(1.0)  # what importing Qiskit costs, give or take

def run(data=None, params=None):
    return ResultResponse(result={"tag": data.get("tag")})
"""


@pytest.mark.parametrize("program", [PROBE, SLOW_IMPORT], ids=["trivial", "import-1s"])
def test_cold_versus_warm_timings(warm: RuntimeUnderTest, program: str) -> None:
    """Not a benchmark (bench/ has those): prints what start() and start-to-result cost each way
    here, for a trivial program and for one whose import takes a second."""
    build = warm.build(program)
    limits = {"memory_mb": 220}
    timings: dict[str, list[float]] = {"cold": [], "warm": [], "cold start()": [], "warm start()": []}
    for _ in range(3):
        for kind in ("cold", "warm"):
            if kind == "warm":
                _prewarm(warm, build, **limits)
                spec_limits = limits
            else:
                spec_limits = {"memory_mb": 218}  # a shape nobody warmed: always cold
                warm.runtime.warm.stop_all()  # type: ignore[attr-defined]
            began = time.monotonic()
            handle = warm.runtime.start(_spec(build, data={"tag": kind}, **spec_limits))
            timings[f"{kind} start()"].append(time.monotonic() - began)
            while warm.runtime.poll(handle).running:
                time.sleep(0.005)
            final = warm.runtime.final_response(handle)
            timings[kind].append(time.monotonic() - began)
            assert final is not None
            assert final.payload["result"]["tag"] == kind
            assert handle.warm is (kind == "warm")
            warm.runtime.cleanup(handle)
    shown = {k: [round(v, 3) for v in vs] for k, vs in timings.items()}
    print(f"\ndocker seconds ({'trivial' if program == PROBE else 'import 1 s'}):", json.dumps(shown))
    assert min(timings["warm"]) < min(timings["cold"])


def _ours(rut: RuntimeUnderTest, container: Any) -> bool:
    mounts = container.attrs.get("Mounts") or []
    return any(str(m.get("Source", "")).startswith(str(rut.runtime.data_dir)) for m in mounts)  # type: ignore[attr-defined]


CHATTY_IMPORT = """
import threading, time

def _chatter():
    while True:
        print("x" * 200, flush=True)
        time.sleep(0.001)

threading.Thread(target=_chatter, daemon=True).start()

def run(data=None, params=None):
    return None
"""


def test_an_idle_warm_container_printing_past_the_cap_is_removed_by_trim(warm: RuntimeUnderTest) -> None:
    """Nobody polls an idle container: trim is what bounds the log a thread started at import
    writes to this host's disk while the container waits."""
    build = warm.build(CHATTY_IMPORT)
    limits = {"memory_mb": 216, "max_output_bytes": 50_000}
    _prewarm(warm, build, **limits)
    shape = warm.runtime.warm_shape(_spec(build, **limits))  # type: ignore[attr-defined]
    (container,) = warm.runtime.client.containers.list(filters={"label": f"planqk.warm={shape}"})
    log_path = container.attrs["LogPath"]
    give_up = time.monotonic() + 30
    while os.path.getsize(log_path) <= 50_000:
        assert time.monotonic() < give_up, "the import-time thread printed nothing"
        time.sleep(0.1)
    counts = warm.runtime.warm.trim()  # type: ignore[attr-defined]
    assert counts["stopped"] >= 1
    with pytest.raises(Exception, match=r"No such container|Not Found|404"):
        warm.runtime.client.containers.get(container.id)
    # Demand is still there: the pool refills (and trim removes the next one the same way).
    assert not warm.runtime.client.containers.list(filters={"id": container.id})


TAKER = """
import json, os, sys, time
from pathlib import Path
from runtimes.base import ExecutionSpec
from runtimes.docker import DockerBuildHandle, DockerConfig, DockerRuntime
from runtimes.local.handles import WarmConfig

config, build, execution_id, at = json.loads(sys.stdin.read())
runtime = DockerRuntime(DockerConfig(data_dir=Path(config["data_dir"]), base_image=config["base_image"],
                                     warm=WarmConfig(**config["warm"])))
spec = ExecutionSpec(execution_id=execution_id, build=DockerBuildHandle.from_json(build), data={"tag": execution_id},
                     params={}, env={}, memory_mb=256, cpus=1.0, timeout_seconds=60, max_pids=64,
                     max_output_bytes=1 << 20)
import logging
logging.basicConfig(level=logging.INFO)
runtime.client.ping()
time.sleep(max(0.0, at - time.time()))
handle = runtime.start(spec)
while runtime.poll(handle).running:
    time.sleep(0.02)
final = runtime.final_response(handle)
runtime.cleanup(handle)
print(json.dumps({"warm": handle.warm, "tag": final.payload["result"]["tag"] if final else None}), flush=True)
os._exit(0)  # a worker process ending: its refill thread ends with it, mid-creation maybe
"""


def test_worker_processes_share_the_pool_and_each_container_is_taken_once(
    base_image: str, warm: RuntimeUnderTest
) -> None:
    import subprocess
    import sys

    from runtimes.docker import DockerConfig, DockerRuntime
    from runtimes.local.handles import WarmConfig

    from .conftest import ROOT

    data = _private_dir("docker-warm-procs")
    pool = {"enabled": True, "min_runners": 1, "max_runners": 1, "idle_seconds": 600, "memory_mb": 8192}
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, warm=WarmConfig(**pool)))
    rut = RuntimeUnderTest("docker", runtime, {"kind": "docker", "data_dir": str(data)}, warm.source_root)
    try:
        build = warm.build(PROBE)
        assert _prewarm(rut, build) == 1
        config = {"data_dir": str(data), "base_image": base_image, "warm": pool}
        at = time.time() + 3
        takers = []
        for _ in range(4):
            execution_id = f"t{uuid.uuid4().hex[:16]}"
            process = subprocess.Popen(
                [sys.executable, "-c", TAKER],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert process.stdin is not None
            process.stdin.write(json.dumps([config, build.to_json(), execution_id, at]))
            process.stdin.close()
            takers.append((execution_id, process))
        outcomes = []
        logs: list[str] = []
        for execution_id, process in takers:
            assert process.stdout is not None
            assert process.stderr is not None
            process.wait(timeout=120)
            out, err = process.stdout.read(), process.stderr.read()
            assert process.returncode == 0, err[-2000:]
            outcome = json.loads(out.strip().splitlines()[-1])
            assert outcome["tag"] == execution_id
            outcomes.append(outcome["warm"])
            logs.append(err[-3000:])
        # One container, four takers at the same moment: exactly one got it, the others started cold.
        assert sorted(outcomes) == [False, False, False, True], "\n".join(logs)
    finally:
        runtime.warm.stop_all()
        left = _containers_of(runtime)
        shutil.rmtree(data, ignore_errors=True)
    assert left == []


def test_removing_a_version_removes_its_warm_containers_and_then_its_image(warm: RuntimeUnderTest) -> None:
    import docker.errors

    build = warm.build(PROBE + "\n# a version of its own\n")
    limits = {"memory_mb": 214}
    _prewarm(warm, build, **limits)
    shape = warm.runtime.warm_shape(_spec(build, **limits))  # type: ignore[attr-defined]
    assert warm.runtime.client.containers.list(filters={"label": f"planqk.warm={shape}"})
    warm.runtime.remove_build(build)
    # Without the pool's stop first, the engine refuses to remove an image a container uses.
    assert warm.runtime.client.containers.list(all=True, filters={"label": f"planqk.warm={shape}"}) == []
    with pytest.raises(docker.errors.ImageNotFound):
        warm.runtime.client.images.get(build.image)  # type: ignore[attr-defined]
    # The demand is forgotten: housekeeping starts nothing for the removed version.
    warm.runtime.warm.trim()  # type: ignore[attr-defined]
    assert warm.runtime.client.containers.list(all=True, filters={"label": f"planqk.warm={shape}"}) == []
