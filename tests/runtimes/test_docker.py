"""What only the Docker runtime has: the container's settings and its own deadline."""

from __future__ import annotations

import contextlib
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
    # A uid (and gid) of its own from PLANQK_EXECUTION_UIDS; private tmpfs for every tmp folder
    # and for the output directory (its result files are copied out once everything else ended).
    assert 200000 <= handle.uid <= 265535
    assert container.attrs["Config"]["User"] == f"{handle.uid}:{handle.uid}"
    assert set(host["Tmpfs"]) == {"/tmp", "/var/tmp", "/dev/shm", "/var/runtime/output"}
    assert all("size=200m" in options for options in host["Tmpfs"].values())
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


def test_an_image_built_with_an_older_runner_runs_the_current_one(base_image: str) -> None:
    """A version whose image was built before an upgrade keeps working: containers run today's runner.

    The base image here is the real one with its runner replaced by one from before the result
    channel and the container supervisor (it prints its response only), so its service image has
    no ``planqk_runtime.container`` at all.
    """
    import io
    import tarfile
    import uuid

    from runtimes.docker import DockerConfig, DockerRuntime

    from .test_local import OLD_RUNNER

    data = _private_dir("docker-old-runner")
    source = _private_dir("docker-old-runner-src")
    old_base = f"planqk-test-old-runner:{uuid.uuid4().hex[:12]}"
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=old_base))
    context = io.BytesIO()
    files = {
        "Dockerfile": (
            f"FROM {base_image}\nUSER root\n"
            'RUN ["python", "-c", "import shutil; shutil.rmtree(\'/opt/planqk/planqk_runtime\')"]\n'
            "COPY planqk_runtime/ /opt/planqk/planqk_runtime/\nUSER planqk\n"
        ),
        **{f"planqk_runtime/{name}": text for name, text in OLD_RUNNER.items()},
    }
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(text.encode()))
    context.seek(0)
    client = runtime.client
    client.images.build(fileobj=context, custom_context=True, tag=old_base, network_mode="none", rm=True)
    rut = RuntimeUnderTest("docker", runtime, {"kind": "docker", "data_dir": str(data)}, source, version_prefix="dold")
    try:
        build = rut.build()
        probe = client.containers.run(
            build.image_id or build.image,
            ["python", "-c", "import planqk_runtime.container"],
            network_mode="none",
            remove=False,
            detach=True,
        )
        try:
            assert probe.wait(timeout=60)["StatusCode"] != 0  # the image's own runner predates the supervisor
        finally:
            probe.remove(force=True)
        _state, output, final = rut.run(build, data={"values": [1, 2, 3]})
        assert final is not None, output
        assert final.payload["result"] == {"sum": 6}
    finally:
        for handle in rut.started:
            runtime.cleanup(handle)
        for handle in rut.builds.values():
            runtime.remove_build(handle)
        with contextlib.suppress(Exception):
            client.images.remove(old_base, force=True)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def test_a_docker_build_hands_pip_the_canonical_list_and_refuses_a_direct_url(docker_rt: RuntimeUnderTest) -> None:
    """Docker builds read requirements as the local runtime does: a URL is refused before anything runs."""
    from runtimes import BuildError, BuildSpec

    from .test_builds_sandbox import Listener

    listener = Listener()
    try:
        requirements = f"probe @ http://127.0.0.1:{listener.port}/probe-0.1.tar.gz\n"
        folder = docker_rt.user_code(requirements=requirements)
        spec = BuildSpec(version_id=f"dtest-url-{folder.name}", source_dir=folder, requirements=requirements)
        lines: list[str] = []
        with pytest.raises(BuildError) as refused:
            docker_rt.runtime.build(spec, log=lines.append)
        assert refused.value.code == "build:user:requirements"
        assert "cannot be installed on the platform" in refused.value.message
        assert listener.connections == 0
    finally:
        listener.close()


def test_a_docker_build_fetches_first_then_builds_without_network(base_image: str, tmp_path) -> None:
    """Issue 16 on Docker: the worker fetches (network, no package code), ``docker build --network none`` installs.

    The package exists only as a source archive on an index the test serves from a folder; its
    build backend tries to reach a loopback listener and to write a host file while the image is
    built. The build succeeds (the backend ran: the program imports what it built), and neither
    attempt got anywhere.
    """
    from runtimes import BuildSpec
    from runtimes.docker import DockerConfig, DockerRuntime

    from .test_builds_sandbox import Listener, hostile_index

    listener = Listener()
    rut = None
    outside = tmp_path / "outside.txt"
    data = _private_dir("docker-fetch-split")
    source = _private_dir("docker-fetch-split-src")
    try:
        index = hostile_index(tmp_path / "index", port=listener.port, targets=[str(outside)])
        runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, pip_index_url=index))
        rut = RuntimeUnderTest(
            "docker", runtime, {"kind": "docker", "data_dir": str(data)}, source, version_prefix="dsplit"
        )
        program = "import evilpkg\n\ndef run(data=None, params=None):\n    return {'value': evilpkg.VALUE}\n"
        folder = rut.user_code(program, requirements="evilpkg==1.0\n")
        lines: list[str] = []
        spec = BuildSpec(version_id=f"dsplit-{folder.name}", source_dir=folder, requirements="evilpkg==1.0\n")
        build = runtime.build(spec, log=lines.append).build
        rut.builds[folder.name] = build
        log = "\n".join(lines)
        assert "==> fetch" in log
        assert "evilpkg==1.0 has no wheel: fetching its source archive" in log
        assert "==> install (docker build --network none" in log
        assert listener.connections == 0
        assert not outside.exists()
        _state, output, final = rut.run(build)
        assert final is not None, output
        assert final.payload["result"] == {"value": 1}
        # A requirement-free version still builds and runs (nothing to fetch).
        plain = rut.build()
        _state, output, final = rut.run(plain, data={"values": [1, 2]})
        assert final is not None, output
        assert final.payload["result"] == {"sum": 3}
    finally:
        listener.close()
        for handle in rut.builds.values() if rut is not None else []:
            rut.runtime.remove_build(handle)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def test_a_docker_build_fetches_from_an_allowed_index_named_in_requirements(base_image: str, tmp_path) -> None:
    """PLANQK_ALLOWED_INDEX_URLS on Docker: the line is accepted, the worker's fetch asks that index."""
    from runtimes import BuildError, BuildSpec
    from runtimes.docker import DockerConfig, DockerRuntime

    from .test_build_caches import wheel_index

    mirror = wheel_index(tmp_path / "mirror", "mirrorpkg", "1.0", {"mirrorpkg/__init__.py": b"WHERE = 'mirror'\n"})
    data = _private_dir("docker-allowed-index")
    source = _private_dir("docker-allowed-index-src")
    nowhere = f"file://{tmp_path}/no-index/"
    config = DockerConfig(data_dir=data, base_image=base_image, pip_index_url=nowhere, allowed_index_urls=(mirror,))
    rut = RuntimeUnderTest(
        "docker", DockerRuntime(config), {"kind": "docker", "data_dir": str(data)}, source, version_prefix="dindex"
    )
    requirements = f"--index-url {mirror}\nmirrorpkg==1.0\n"
    try:
        program = "import mirrorpkg\n\ndef run(data=None, params=None):\n    return {'where': mirrorpkg.WHERE}\n"
        folder = rut.user_code(program, requirements=requirements)
        lines: list[str] = []
        spec = BuildSpec(version_id=f"dindex-{folder.name}", source_dir=folder, requirements=requirements)
        build = rut.runtime.build(spec, log=lines.append).build
        rut.builds[folder.name] = build
        assert "packages come from the index(es) requirements.txt names" in "\n".join(lines)
        _state, output, final = rut.run(build)
        assert final is not None, output
        assert final.payload["result"] == {"where": "mirror"}
        strict = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, pip_index_url=nowhere))
        with pytest.raises(BuildError) as refused:
            strict.build(
                BuildSpec(version_id=f"dindex-strict-{folder.name}", source_dir=folder, requirements=requirements),
                log=lambda _line: None,
            )
        assert refused.value.code == "build:user:requirements"
        assert "installer options" in refused.value.message
    finally:
        for handle in rut.builds.values():
            rut.runtime.remove_build(handle)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def test_another_install_on_the_same_engine_never_takes_our_executions_for_orphans(
    docker_rt: RuntimeUnderTest, base_image: str
) -> None:
    """Two installs (staging and production) may share one engine: each one's reaper lists its
    own containers only, or it would stop the other's running executions as orphans."""
    from runtimes.docker import DockerConfig, DockerRuntime

    build = docker_rt.build(ENDLESS)
    handle = docker_rt.start(build, timeout_seconds=60)
    other_data = _private_dir("docker-other-install")
    other = DockerRuntime(DockerConfig(data_dir=other_data, base_image=base_image))
    try:
        assert handle.execution_id in {h.execution_id for h in docker_rt.runtime.orphans(set())}
        assert handle.execution_id not in {h.execution_id for h in other.orphans(set())}
        assert docker_rt.runtime.poll(handle).running
    finally:
        docker_rt.runtime.cancel(handle)
        shutil.rmtree(other_data, ignore_errors=True)
