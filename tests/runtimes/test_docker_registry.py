"""Docker builds through a registry (issue 22): one host builds and pushes, another pulls by digest.

A real registry (Debian's ``docker-registry``, the CNCF distribution registry) on loopback, which
Docker allows without TLS, and a second Docker engine on this machine with its own data root: a
second image store that has never seen the image. The fixtures here are imported by
``tests/hosts/test_docker_registry.py`` too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import RuntimeUnderTest, _private_dir

REGISTRY_APT = "apt-get install docker-registry"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check: object, what: str, timeout: float, log: Path) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not start; the end of {log}:\n{log.read_text()[-3000:]}")


@dataclass
class Registry:
    """A distribution registry on loopback: ``address`` is ``127.0.0.1:<port>``."""

    address: str
    storage: Path


@contextlib.contextmanager
def running_registry(htpasswd: str = "") -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port, storing into a folder of its own; with
    ``htpasswd`` (a line ``user:bcrypt-hash``) it asks for basic auth."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip(f"no docker-registry: {REGISTRY_APT} (as .ci/run does)")
    folder = Path(tempfile.mkdtemp(prefix="planqk-registry-"))
    port = _free_port()
    config = folder / "config.yml"
    auth = ""
    if htpasswd:
        (folder / "htpasswd").write_text(htpasswd + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: planqk-tests\n    path: {folder / 'htpasswd'}\n"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
    )
    log = folder / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        # /v2/ answers 200, or 401 when it asks for credentials: either way it is up.
        def up() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).status == 200
            except urllib.error.HTTPError as exc:
                return exc.code == 401

        _wait(up, "the registry", 30, log)
        yield Registry(address=f"127.0.0.1:{port}", storage=folder / "data")
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)


# One of each per test session: tests/hosts imports these fixtures, which makes them fixtures of
# that module too, and a second registry and engine would only cost time.
_SHARED: dict[str, object] = {}


def _once(name: str, start: object) -> Iterator[object]:
    if name in _SHARED:
        yield _SHARED[name]
        return
    with start() as found:  # type: ignore[operator]
        _SHARED[name] = found
        try:
            yield found
        finally:
            del _SHARED[name]


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """A registry without credentials (the usual one on a private network or loopback)."""
    yield from _once("registry", running_registry)  # type: ignore[misc]


@dataclass
class Engine:
    """A Docker engine of its own: ``host`` is its DOCKER_HOST."""

    host: str
    root: Path


@pytest.fixture(scope="session")
def second_engine() -> Iterator[Engine]:
    """A second Docker engine (:func:`running_second_engine`), one per test session."""
    yield from _once("engine", running_second_engine)  # type: ignore[misc]


@contextlib.contextmanager
def running_second_engine() -> Iterator[Engine]:
    """A second dockerd on this machine, as ../shared/ci/start-docker.sh starts the first (no
    iptables, no bridge), with its own data root (image store), exec root, pid file, socket,
    containerd namespaces and cgroup parent: nothing of the first engine's is shared."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second Docker engine needs dockerd and root")
    # Short paths: the engine's and containerd's unix sockets live under the exec root.
    root = Path(tempfile.mkdtemp(prefix="pq-d2-", dir="/tmp"))
    socket_path = root / "docker.sock"
    namespace = f"planqk-{uuid.uuid4().hex[:6]}"
    log = root / "dockerd.log"
    cmd = [
        "dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{socket_path}",
        "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--containerd-namespace", namespace, "--containerd-plugins-namespace", f"{namespace}-plugins",
        "--cgroup-parent", namespace,
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    host = f"unix://{socket_path}"
    try:
        import docker

        _wait(lambda: docker.DockerClient(base_url=host, timeout=5).ping(), "the second Docker engine", 60, log)
        yield Engine(host=host, root=root)
    finally:
        with contextlib.suppress(Exception):
            client = docker.DockerClient(base_url=host, timeout=30)
            for container in client.containers.list(all=True):
                container.remove(force=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        subprocess.run(["umount", "-R", "-l", str(root)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


# --- the registry setting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:5000/planqk", "registry.example.com", "localhost:5000", "reg.example.com/a/b-c_d.e", "[::1]:5000/x"],
)
def test_a_registry_setting_in_docker_s_grammar_is_accepted(value: str) -> None:
    from runtimes.docker import parse_registry

    assert parse_registry(value) == value
    assert parse_registry(value + "/") == value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("http://127.0.0.1:5000/planqk", "scheme"),
        ("planqk", "no registry host"),
        ("planqk/services", "no registry host"),
        ("127.0.0.1:5000/planqk:latest", "tag or a digest"),
        ("127.0.0.1:5000/planqk@sha256:" + "0" * 64, "tag or a digest"),
        ("127.0.0.1:5000/Planqk", "reference grammar"),
        ("127.0.0.1:5000/a/../b", "reference grammar"),
        ("127.0.0.1:5000//b", "reference grammar"),
        ("127.0.0.1:5000/a b", "reference grammar"),
        ("-bad.example.com/x", "hyphen"),
    ],
)
def test_a_registry_setting_outside_the_grammar_is_refused_saying_why(value: str, says: str) -> None:
    from runtimes.docker import parse_registry

    with pytest.raises(ValueError, match=says):
        parse_registry(value)


def test_the_registry_password_never_shows_in_the_config() -> None:
    from runtimes.docker import DockerConfig

    config = DockerConfig(data_dir=Path("/nonexistent"), registry="r.example.com", registry_password="hunter2-x")
    assert "hunter2-x" not in repr(config)


def test_the_settings_refuse_a_bad_registry_at_startup(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    env = {
        **os.environ,
        "PLANQK_DOCKER_REGISTRY": "http://127.0.0.1:5000/planqk",
        "PLANQK_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "planqk_portal.settings",
    }
    completed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import django; django.setup()"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode != 0
    assert "PLANQK_DOCKER_REGISTRY" in completed.stderr
    assert "scheme" in completed.stderr


# --- a build on one engine runs on another -----------------------------------------------------


@dataclass
class TwoHosts:
    a: RuntimeUnderTest
    b: RuntimeUnderTest
    registry: str
    log: list[str]


@pytest.fixture(scope="module")
def two_hosts(base_image: str, registry: Registry, second_engine: Engine) -> Iterator[TwoHosts]:
    """Host A builds on the first engine and pushes; host B runs on the second engine only."""
    import docker
    from runtimes.docker import DockerConfig, DockerRuntime

    prefix = f"{registry.address}/t{uuid.uuid4().hex[:6]}"
    data_a, data_b, source = _private_dir("reg-a"), _private_dir("reg-b"), _private_dir("reg-src")
    runtime_a = DockerRuntime(DockerConfig(data_dir=data_a, base_image=base_image, registry=prefix, host_name="A"))
    client_b = docker.DockerClient(base_url=second_engine.host, timeout=120)
    runtime_b = DockerRuntime(
        DockerConfig(data_dir=data_b, base_image=base_image, registry=prefix, host_name="B"), client=client_b
    )
    log: list[str] = []
    a = RuntimeUnderTest("docker", runtime_a, {"kind": "docker"}, source, version_prefix=f"reg{uuid.uuid4().hex[:6]}")
    b = RuntimeUnderTest("docker", runtime_b, {"kind": "docker"}, source)
    yield TwoHosts(a=a, b=b, registry=prefix, log=log)
    for handle in b.started:
        runtime_b.cleanup(handle)
    for build in a.builds.values():
        runtime_a.remove_build(build)
        runtime_b.remove_build(build)
    for folder in (data_a, data_b, source):
        shutil.rmtree(folder, ignore_errors=True)


def _returns(who: str) -> str:
    return (
        "from .libs.return_objects import ResultResponse\n\n\n"
        f"def run(data=None, params=None):\n    return ResultResponse(result={{'who': {who!r}}})\n"
    )


def _build(hosts: TwoHosts, program: str | None = None) -> tuple[object, list[str]]:
    from runtimes import BuildSpec

    folder = hosts.a.user_code(program)
    lines: list[str] = []
    spec = BuildSpec(version_id=f"{hosts.a.version_prefix}-{folder.name}", source_dir=folder, requirements="")
    build = hosts.a.runtime.build(spec, log=lines.append).build
    hosts.a.builds[f"{folder.name}-{len(hosts.a.builds)}"] = build  # removed from both engines at the end
    return build, lines


def test_a_version_built_on_host_a_runs_on_host_b_pulled_by_digest(two_hosts: TwoHosts) -> None:
    from runtimes.docker import image_tag

    build, lines = _build(two_hosts)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", build.digest), build.digest
    assert build.pushed.startswith(f"{two_hosts.registry}/{image_tag(build.version_id)}:")
    assert any(line.startswith(f"pushed to {build.pushed} digest {build.digest} from host A") for line in lines), lines
    engine_b = two_hosts.b.runtime.client
    reference = f"{two_hosts.registry}/{image_tag(build.version_id)}@{build.digest}"
    import docker.errors

    with pytest.raises(docker.errors.ImageNotFound):
        engine_b.images.get(reference)  # host B's engine has never seen it

    job_log: list[str] = []
    state, output, final = two_hosts.b.run(build, data={"values": [1, 2, 3]}, log=job_log.append)
    assert state.exit_code == 0, output
    assert final is not None, output
    assert final.payload["result"] == {"sum": 6}
    assert reference in engine_b.images.get(reference).attrs["RepoDigests"]
    assert len(job_log) == 1, job_log
    assert re.fullmatch(rf"pulled {re.escape(reference)} in \d+\.\ds", job_log[0]), job_log
    # The next execution on host B finds the image there: no second pull.
    again: list[str] = []
    _state, output, final = two_hosts.b.run(build, data={"values": [4]}, log=again.append)
    assert final is not None, output
    assert final.payload["result"] == {"sum": 4}
    assert again == []
    # The building host has the image by its digest already: it runs it without a pull.
    on_a: list[str] = []
    _state, output, final = two_hosts.a.run(build, data={"values": [5]}, log=on_a.append)
    assert final is not None, output
    assert final.payload["result"] == {"sum": 5}
    assert on_a == []
    assert two_hosts.b.runtime.describe()["images"] == f"pushed to {two_hosts.registry}, pulled by digest where missing"


def test_a_tag_moved_in_the_registry_does_not_change_what_host_b_runs(two_hosts: TwoHosts) -> None:
    original, _ = _build(two_hosts, _returns("original"))
    # Someone pushes other code under the very tag the build pushed.
    engine_a = two_hosts.a.runtime.client
    impostor_build, _ = _build(two_hosts, _returns("impostor"))
    repository, tag = original.pushed.rsplit(":", 1)
    engine_a.images.get(impostor_build.image_id).tag(repository, tag)
    for event in engine_a.api.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in event, event

    _state, output, final = two_hosts.b.run(original)
    assert final is not None, output
    assert final.payload["result"] == {"who": "original"}


def test_a_digest_edited_in_the_database_cannot_name_another_image(two_hosts: TwoHosts) -> None:
    import dataclasses

    from runtimes import RuntimeUnavailable
    from runtimes.docker import DockerBuildHandle

    build, _ = _build(two_hosts)
    for digest in ("sha256:../../etc", "busybox", "sha256:" + "a" * 63 + "Z"):
        edited = dataclasses.replace(build, digest=digest)
        with pytest.raises(RuntimeUnavailable, match="not a sha256 digest"):
            two_hosts.b.start(edited)
    # A pushed name pointing elsewhere is never pulled: the name comes from this host's setting.
    elsewhere = DockerBuildHandle.from_json({**build.to_json(), "pushed": "evil.example.com/x:latest"})
    state, output, _ = two_hosts.b.run(elsewhere)
    assert state.exit_code == 0, output


def test_a_digest_the_registry_does_not_have_fails_clearly(two_hosts: TwoHosts) -> None:
    import dataclasses

    from runtimes import RuntimeUnavailable

    build, _ = _build(two_hosts)
    missing = dataclasses.replace(build, digest="sha256:" + "0" * 64)
    with pytest.raises(RuntimeUnavailable) as caught:
        two_hosts.b.start(missing)
    message = str(caught.value)
    assert message.startswith(f"pulling {two_hosts.registry}/"), message
    assert "on host B failed" in message
    assert caught.value.code == "platform:build-unavailable"
    for leak in ("Traceback", "/var/run", "docker.sock", "http+docker"):
        assert leak not in message


def test_an_unreachable_registry_fails_the_build_clearly(base_image: str, second_engine: Engine) -> None:
    from runtimes import BuildError, BuildSpec
    from runtimes.docker import DockerBuildHandle, DockerConfig, DockerRuntime

    data, source = _private_dir("reg-down"), _private_dir("reg-down-src")
    nowhere = f"127.0.0.1:{_free_port()}/x"
    runtime = DockerRuntime(DockerConfig(data_dir=data, base_image=base_image, registry=nowhere))
    rut = RuntimeUnderTest("docker", runtime, {"kind": "docker"}, source, version_prefix=f"down{uuid.uuid4().hex[:6]}")
    folder = rut.user_code()
    try:
        with pytest.raises(BuildError) as caught:
            runtime.build(
                BuildSpec(version_id=f"{rut.version_prefix}-x", source_dir=folder, requirements=""), log=lambda _: None
            )
        assert caught.value.code == "build:platform:registry-push"
        assert caught.value.user_error is False
        assert "pushing the image to the registry 127.0.0.1:" in caught.value.message
        # The registry's name is not left on an image the registry does not hold.
        assert not [tag for image in runtime.client.images.list() for tag in image.tags if tag.startswith(nowhere)]
    finally:
        with contextlib.suppress(Exception):
            runtime.remove_build(DockerBuildHandle(version_id=f"{rut.version_prefix}-x", image=""))
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def test_a_pull_stops_when_the_job_is_no_longer_ours(two_hosts: TwoHosts) -> None:
    from runtimes import RuntimeUnavailable

    build, _ = _build(two_hosts, _returns("stopped"))
    asked: list[bool] = []

    def should_stop() -> bool:
        asked.append(True)
        return True

    with pytest.raises(RuntimeUnavailable, match="was stopped"):
        two_hosts.b.start(build, should_stop=should_stop)
    assert asked
    # Asked only while pulling: the next start pulls and runs.
    _state, output, final = two_hosts.b.run(build)
    assert final is not None, output
    assert final.payload["result"] == {"who": "stopped"}


def test_a_host_builds_on_a_base_image_the_operator_pushed_to_the_registry(
    two_hosts: TwoHosts, base_image: str, second_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an operator does for a new building host: push the base image to the registry once
    and name it there in PLANQK_BASE_IMAGE; a host whose engine lacks it pulls it at its first build."""
    from runtimes import BuildSpec
    from runtimes.docker import DockerConfig, DockerRuntime

    engine_a = two_hosts.a.runtime.client
    pushed_base = f"{two_hosts.registry}/python-base:3.11"
    engine_a.images.get(base_image).tag(pushed_base)
    for event in engine_a.api.push(pushed_base, stream=True, decode=True):
        assert "error" not in event, event
    # Host B's worker: its engine from the environment, as every worker finds it.
    monkeypatch.setenv("DOCKER_HOST", second_engine.host)
    data = _private_dir("reg-b-builds")
    builder_b = DockerRuntime(
        DockerConfig(data_dir=data, base_image=pushed_base, registry=two_hosts.registry, host_name="B")
    )
    folder = two_hosts.a.user_code(_returns("built on B"))
    lines: list[str] = []
    spec = BuildSpec(version_id=f"{two_hosts.a.version_prefix}-b-{folder.name}", source_dir=folder, requirements="")
    build = None
    try:
        build = builder_b.build(spec, log=lines.append).build
        assert any(line.startswith(f"pulled the base image {pushed_base} on host B") for line in lines), lines
        assert any(line.startswith(f"pushed to {build.pushed} digest {build.digest} from host B") for line in lines)
        # Built on B, it runs on A (whose engine has only the base) through the registry as well.
        job_log: list[str] = []
        _state, output, final = two_hosts.a.run(build, log=job_log.append)
        assert final is not None, output
        assert final.payload["result"] == {"who": "built on B"}
        assert [line.split(" in ")[0] for line in job_log] == [
            f"pulled {two_hosts.registry}/{build.image}@{build.digest}"
        ]
    finally:
        with contextlib.suppress(Exception):
            engine_a.images.remove(pushed_base)
        if build is not None:
            builder_b.remove_build(build)
            two_hosts.a.runtime.remove_build(build)
        shutil.rmtree(data, ignore_errors=True)


def test_registry_credentials_from_the_settings_push_and_pull_and_never_show(
    base_image: str, second_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import docker
    from runtimes import BuildError, BuildSpec, ExecutionSpec, RuntimeUnavailable
    from runtimes.docker import DockerConfig, DockerRuntime, image_tag

    if shutil.which("htpasswd") is None:
        pytest.skip("no htpasswd: apt-get install apache2-utils (as .ci/run does)")
    password = f"pw-{uuid.uuid4().hex}"
    line = subprocess.run(
        ["htpasswd", "-Bbn", "planqk", password], capture_output=True, text=True, check=True
    ).stdout.strip()
    caplog.set_level(logging.DEBUG)
    data, source = _private_dir("reg-auth"), _private_dir("reg-auth-src")
    with running_registry(htpasswd=line) as secured:
        prefix = f"{secured.address}/auth"

        def runtime(secret: str, **kwargs: object) -> DockerRuntime:
            config = DockerConfig(
                data_dir=data,
                base_image=base_image,
                registry=prefix,
                registry_username="planqk" if secret else "",
                registry_password=secret,
            )
            return DockerRuntime(config, **kwargs)  # type: ignore[arg-type]

        rut = RuntimeUnderTest("docker", runtime(password), {}, source, version_prefix=f"auth{uuid.uuid4().hex[:6]}")
        folder = rut.user_code(_returns("with credentials"))
        spec = BuildSpec(version_id=f"{rut.version_prefix}-x", source_dir=folder, requirements="")
        refused: list[str] = []
        for secret in ("", "wrong-" + password):
            with pytest.raises(BuildError) as caught:
                runtime(secret).build(spec, log=refused.append)
            assert caught.value.code == "build:platform:registry-push"
            assert "pushing the image to the registry" in caught.value.message
            if secret:
                assert secret not in caught.value.message
        lines: list[str] = []
        build = runtime(password).build(spec, log=lines.append).build
        assert build.digest
        client_b = docker.DockerClient(base_url=second_engine.host, timeout=120)
        with pytest.raises(RuntimeUnavailable):
            runtime("", client=client_b).start(
                ExecutionSpec(execution_id=f"t{uuid.uuid4().hex[:12]}", build=build, data={}, params={})
            )
        host_b = RuntimeUnderTest("docker", runtime(password, client=client_b), {}, source)
        _state, output, final = host_b.run(build)
        assert final is not None, output
        assert final.payload["result"] == {"who": "with credentials"}
        everything = "\n".join([*refused, *lines, output, json.dumps(build.to_json()), caplog.text])
        assert password not in everything
        with contextlib.suppress(Exception):
            client_b.images.remove(f"{prefix}/{image_tag(build.version_id)}@{build.digest}", force=True)
        rut.runtime.remove_build(build)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)
