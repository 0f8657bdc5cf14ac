"""What only the Docker runtime has: the container's settings and its own deadline."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from .conftest import RuntimeUnderTest, _private_dir
from .test_contract import ENDLESS

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def docker_rt(base_image: str) -> Iterator[RuntimeUnderTest]:
    from runtimes.docker import DockerConfig, DockerRuntime

    data = _private_dir("docker-only")
    source = _private_dir("docker-only-src")
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, alarm_grace_seconds=1))
    rut = RuntimeUnderTest("docker", runtime, {"kind": "docker", "data_dir": str(data)}, source, version_prefix="dtest")
    yield rut
    for handle in rut.started:
        runtime.cleanup(handle)
    for build in rut.builds.values():
        runtime.remove_build(build)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)


def test_container_is_locked_down(docker_rt: RuntimeUnderTest) -> None:
    build = docker_rt.build(ENDLESS)
    handle = docker_rt.start(build, memory_mb=200, cpus=0.5, max_pids=40, timeout_seconds=30)
    container = docker_rt.runtime.client.containers.get(handle.container)
    host = container.attrs["HostConfig"]
    assert container.name == f"planqk-job-{handle.execution_id}"
    assert container.labels["planqk.execution"] == handle.execution_id
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == 200 * 1024 * 1024
    assert host["MemorySwap"] == 200 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 40
    # A uid (and gid) of its own from PLANQK_EXECUTION_UIDS; private tmpfs for every tmp folder.
    assert 200000 <= handle.uid <= 265535
    assert container.attrs["Config"]["User"] == f"{handle.uid}:{handle.uid}"
    assert set(host["Tmpfs"]) == {"/tmp", "/var/tmp", "/dev/shm"}
    assert any(m["Destination"] == "/var/input" and m["RW"] is False for m in container.attrs["Mounts"])
    docker_rt.runtime.cancel(handle)


def test_container_ends_itself_when_nobody_polls(docker_rt: RuntimeUnderTest) -> None:
    build = docker_rt.build(ENDLESS)
    handle = docker_rt.start(build, timeout_seconds=1)
    container = docker_rt.runtime.client.containers.get(handle.container)
    # No poll: the container's own alarm (timeout + 1 s grace here) must end it.
    give_up = time.monotonic() + 60
    while container.status != "exited":
        assert time.monotonic() < give_up, "the container outlived its deadline"
        time.sleep(0.5)
        container.reload()
    state = docker_rt.runtime.poll(handle)
    assert state.timed_out is True
    assert state.exit_code != 0
