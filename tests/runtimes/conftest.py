"""Fixtures for the runtime contract suite: every runtime variant this machine can run.

The variants are real runtimes, never stand-ins:

- ``local``: the local runtime as configured by default (bubblewrap where it works, cgroups
  where /sys/fs/cgroup is writable);
- ``local-nosandbox``: ``PLANQK_SANDBOX=none`` (resource limits, a private network namespace
  when the worker is root, and an unprivileged uid);
- ``local-rlimits``: no sandbox and no cgroups: only setrlimit and the uid switch;
- ``local-warm`` and ``local-nosandbox-warm``: ``local`` and ``local-nosandbox`` with warm runners
  on (:mod:`runtimes.local.warm`): every start first prewarms the spec's shape and then must get a
  warm handle, so each case runs on a runner that imported its code before its execution existed;
- ``docker``: the Docker runtime on the base image ``planqk/python-base:3.11``;
- ``external``: the external runtime (services imported from a URL) against ``planqk serve``
  started on loopback in the user code's folder, one provider per program.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from planqk_runtime.protocol import FinalResponse
from planqk_samples import sample_files
from runtimes.base import BuildHandle, BuildSpec, ExecutionHandle, ExecutionSpec, ExecutionState, Runtime
from runtimes.local import LocalConfig, LocalRuntime, accessible_to
from runtimes.local.handles import WarmConfig

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
#: How long a warm variant's start waits for a runner of the spec's shape to be ready.
PREWARM_SECONDS = 60.0
#: The warm variants' pool: small, and runners nobody takes stop within a minute (a suite run
#: leaves a shape behind per program and limits; they must not pile up on a shared machine). The
#: memory budget is generous: a run of the suite has dozens of shapes idle at once (a Docker
#: container's charge is tens of MB), and a start refused for the budget would fail the case for
#: a reason it does not test (the budget has tests of its own in test_warm_pool.py).
WARM_TEST_POOL = {"enabled": True, "min_runners": 1, "max_runners": 2, "idle_seconds": 60, "memory_mb": 16384}

# What an execution's processes carry in PLANQK_EXECUTION_ID besides its id: a warm runner keeps
# the name it started under (its handle's marker), so processes_of must look for that too.
_MARKERS: dict[str, set[str]] = {}


def execution_spec(build: BuildHandle, **values: Any) -> ExecutionSpec:
    """An execution of ``build`` with a fresh id, no input and small limits; ``values`` override."""
    fields: dict[str, Any] = {
        "execution_id": f"t{uuid.uuid4().hex[:16]}",
        "build": build,
        "data": {},
        "params": {},
        "env": {},
        "memory_mb": 256,
        "cpus": 1.0,
        "timeout_seconds": 60,
        "max_pids": 64,
        "max_output_bytes": 1024 * 1024,
    }
    fields.update(values)
    return ExecutionSpec(**fields)


@dataclass
class RuntimeUnderTest:
    """A runtime plus how to build user code on it once per distinct program."""

    variant: str
    runtime: Runtime
    config: dict[str, Any]
    source_root: Path
    builds: dict[str, BuildHandle] = field(default_factory=dict)
    started: list[ExecutionHandle] = field(default_factory=list)
    # The external variant: one `planqk serve` per user code folder.
    providers: dict[str, tuple[subprocess.Popen[str], str]] = field(default_factory=dict)
    # Image tags are global on an engine: fixtures that share one must not share names.
    version_prefix: str = "test"

    def user_code(self, program: str | None = None, *, sample: str = "sum", requirements: str = "") -> Path:
        """A user code folder: a sample (default the template's sum) with another program."""
        files = dict(sample_files(sample))
        if program is not None:
            files["src/program.py"] = program.encode()
        files["requirements.txt"] = requirements.encode()
        digest = hashlib.sha256(json.dumps(sorted((k, v.hex()) for k, v in files.items())).encode()).hexdigest()
        folder = self.source_root / digest[:16]
        if not folder.exists():
            for path, content in files.items():
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_bytes(content)
        return folder

    def build(self, program: str | None = None, *, sample: str = "sum", requirements: str = "") -> BuildHandle:
        """Build the program once per session and return the build handle."""
        folder = self.user_code(program, sample=sample, requirements=requirements)
        if folder.name not in self.builds:
            spec = BuildSpec(
                version_id=f"{self.version_prefix}-{folder.name}",
                source_dir=folder,
                requirements=requirements,
                external_url=self.provider(folder) if self.config["kind"] == "external" else "",
            )
            self.builds[folder.name] = self.runtime.build(spec, log=lambda line: None).build
        return self.builds[folder.name]

    def provider(self, folder: Path) -> str:
        """The URL of a `planqk serve` on loopback serving ``folder`` (started once)."""
        if folder.name not in self.providers:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            process = subprocess.Popen(
                [sys.executable, "-m", "planqk_cli", "serve", "-p", "0", "--python", sys.executable],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"at (http://\S+?)/?$", line.strip())
            if match is None:
                process.kill()
                raise AssertionError(f"planqk serve did not start: {line!r}")
            self.providers[folder.name] = (process, match.group(1))
        return self.providers[folder.name][1]

    def start(self, build: BuildHandle, **limits: Any) -> ExecutionHandle:
        """Start an execution with small default limits."""
        spec = execution_spec(build, **limits)
        if self.warm:
            # The shape's runner is started and ready before the start, so the start takes it:
            # every case of the suite then runs on the warm path, never silently cold.
            ready = self.runtime.prewarm(spec, wait_seconds=PREWARM_SECONDS)  # type: ignore[attr-defined]
            summary = self.runtime.warm.summary()  # type: ignore[attr-defined]
            assert ready > 0, f"{self.variant}: no warm runner got ready in {PREWARM_SECONDS:.0f} s ({summary})"
        handle = self.runtime.start(spec)
        self.started.append(handle)
        marker = getattr(handle, "marker", "")
        if marker:
            _MARKERS.setdefault(handle.execution_id, set()).add(marker)
        if self.warm:
            assert getattr(handle, "warm", False), f"{self.variant}: the start did not take a warm runner"
        return handle

    @property
    def warm(self) -> bool:
        """Whether this variant runs every execution on a warm runner."""
        return bool(self.config.get("warm", {}).get("enabled"))

    def wait(self, handle: ExecutionHandle, limit: float = 180.0) -> ExecutionState:
        """Poll until the execution ends (``limit`` only guards against a hanging test)."""
        give_up = time.monotonic() + limit
        while True:
            state = self.runtime.poll(handle)
            if not state.running:
                return state
            assert time.monotonic() < give_up, f"execution {handle.execution_id} still running"
            time.sleep(0.1)

    def output(self, handle: ExecutionHandle) -> str:
        """The whole output so far, read incrementally as a log poller does."""
        text, offset = "", 0
        while True:
            chunk, offset = self.runtime.read_output(handle, offset)
            if not chunk:
                return text
            text += chunk

    def run(self, build: BuildHandle, **limits: Any) -> tuple[ExecutionState, str, FinalResponse | None]:
        """Start, wait, read: the state, the output and the runner's response (from its channel)."""
        handle = self.start(build, **limits)
        state = self.wait(handle)
        text = self.output(handle)
        final = self.runtime.final_response(handle)
        # As the engine does: an ended execution is cleaned up, its uid and what it left in the
        # shared temporary folders go (a later execution has another uid and would not own them).
        self.runtime.cleanup(handle)
        return state, text, final


def local_wheel(wheelhouse: Path, name: str, version: str = "1.0") -> str:
    """A pure-Python wheel ``name`` (a module of that name, ``VALUE = version``) in ``wheelhouse``.

    Returns the pinned requirement for it: a real requirement set of its own (its own environment
    key) that installs from the platform's cache, without any network.
    """
    import base64
    import zipfile

    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VALUE = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheelhouse / f"{module}-{version}-py3-none-any.whl", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return f"{name}=={version}\n"


def _private_dir(name: str) -> Path:
    # Not pytest's tmp_path: its parents are 0700, and user code runs as another uid.
    path = Path(tempfile.mkdtemp(prefix=f"planqk-rt-{name}-"))
    path.chmod(0o755)
    return path


def _system_python() -> str | None:
    """An interpreter that uid 65534 may run when there is no sandbox to bind one in."""
    if os.geteuid() != 0:
        return sys.executable
    for candidate in (getattr(sys, "_base_executable", sys.executable), SYSTEM_PYTHON):
        if candidate and os.path.exists(candidate) and accessible_to(candidate, 65534, 65534):
            probe = subprocess.run([candidate, "-c", "import venv, ensurepip"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    return None


def _local(variant: str, data_dir: Path) -> tuple[Runtime, dict[str, Any]]:
    options: dict[str, Any] = {"data_dir": str(data_dir)}
    base = variant.removesuffix("-warm")
    if base in ("local-nosandbox", "local-rlimits"):
        python = _system_python()
        if python is None:
            pytest.skip("no Python that an unprivileged uid can run without a sandbox")
        options.update(sandbox="none", python=python)
    if base == "local-rlimits":
        options["use_cgroups"] = False
    if variant.endswith("-warm"):
        # JSON in the config (a restarted worker's subprocess gets it so), a WarmConfig in the runtime.
        options["warm"] = dict(WARM_TEST_POOL)
    return local_runtime(options), {"kind": "local", **options}


def local_runtime(options: dict[str, Any]) -> LocalRuntime:
    """A local runtime from the JSON options of a variant's config (without its ``kind``)."""
    values = {**options, "data_dir": Path(options["data_dir"])}
    if "warm" in values:
        values["warm"] = WarmConfig(**values["warm"])
    return LocalRuntime(LocalConfig(**values))


def _external(data_dir: Path) -> tuple[Runtime, dict[str, Any]]:
    from runtimes.external import ExternalConfig, ExternalRuntime

    # The provider listens on loopback, which only an operator's setting allows.
    return ExternalRuntime(ExternalConfig(data_dir=data_dir, allow_private=True)), {
        "kind": "external",
        "data_dir": str(data_dir),
        "allow_private": True,
    }


def _docker(data_dir: Path, base_image: str, *, warm: bool = False) -> tuple[Runtime, dict[str, Any]]:
    import docker
    from runtimes.docker import DockerConfig, DockerRuntime

    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine answers: {exc}")
    options: dict[str, Any] = {"data_dir": str(data_dir), "base_image": base_image}
    if warm:
        options["warm"] = dict(WARM_TEST_POOL)
    values = {**options, "data_dir": data_dir, **({"warm": WarmConfig(**options["warm"])} if warm else {})}
    return DockerRuntime(DockerConfig(**values)), {"kind": "docker", **options}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "not_external(reason): a contract case that cannot apply to a provider's service"
    )


_VARIANTS: dict[str, RuntimeUnderTest] = {}


@pytest.fixture(scope="session")
def runtime_cache() -> Iterator[dict[str, RuntimeUnderTest]]:
    yield _VARIANTS
    for rut in _VARIANTS.values():
        for handle in rut.started:
            try:
                rut.runtime.cleanup(handle)
            except Exception as exc:  # report, but let the other cleanups run
                print(f"cleanup of {handle.execution_id} failed: {exc}")
        if rut.warm:
            stop_warm_runners(rut.runtime)
        if rut.config["kind"] == "docker":
            for build in rut.builds.values():
                rut.runtime.remove_build(build)
        for process, _url in rut.providers.values():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(rut.config["data_dir"], ignore_errors=True)
        shutil.rmtree(rut.source_root, ignore_errors=True)
    _VARIANTS.clear()


VARIANTS = [
    pytest.param("local", id="local"),
    pytest.param("local-nosandbox", id="local-nosandbox"),
    pytest.param("local-rlimits", id="local-rlimits"),
    pytest.param("local-warm", id="local-warm"),
    pytest.param("local-nosandbox-warm", id="local-nosandbox-warm"),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
    pytest.param("docker-warm", id="docker-warm", marks=pytest.mark.docker),
    pytest.param("external", id="external"),
]


@pytest.fixture(params=VARIANTS)
def rt(request: pytest.FixtureRequest, runtime_cache: dict[str, RuntimeUnderTest]) -> RuntimeUnderTest:
    variant = request.param
    marker = request.node.get_closest_marker("not_external")
    if variant == "external" and marker is not None:
        pytest.skip(f"not for a service imported from a URL: {marker.args[0]}")
    if variant not in runtime_cache:
        data_dir = _private_dir(variant)
        if variant in ("docker", "docker-warm"):
            runtime, config = _docker(data_dir, request.getfixturevalue("base_image"), warm=variant == "docker-warm")
        elif variant == "external":
            runtime, config = _external(data_dir)
        else:
            runtime, config = _local(variant, data_dir)
        # Image tags are global on an engine: the two Docker variants build under names of their own.
        prefix = "twarm" if variant == "docker-warm" else "test"
        runtime_cache[variant] = RuntimeUnderTest(
            variant, runtime, config, _private_dir(f"{variant}-src"), version_prefix=prefix
        )
    return runtime_cache[variant]


def fresh_runtime(config: dict[str, Any]) -> Runtime:
    """A new runtime object from the JSON config (what a restarted worker would build)."""
    options = dict(config)
    kind = options.pop("kind")
    options["data_dir"] = Path(options["data_dir"])
    if kind == "docker":
        from runtimes.docker import DockerConfig, DockerRuntime

        if "warm" in options:
            options["warm"] = WarmConfig(**options["warm"])
        return DockerRuntime(DockerConfig(**options))
    if kind == "external":
        from runtimes.external import ExternalConfig, ExternalRuntime

        return ExternalRuntime(ExternalConfig(**options))
    return local_runtime(options)


def stop_warm_runners(runtime: Runtime, wait_seconds: float = 30.0) -> None:
    """Stop every runner of a warm runtime's pool and clean up what is left of them, also those
    its background refill was still starting (they are waited for, then stopped too)."""
    pool = runtime.warm  # type: ignore[attr-defined]
    give_up = time.monotonic() + wait_seconds
    while True:
        pool.stop_all()
        pool.trim()
        starting = sum(shape["starting"] for shape in pool.state())
        if not starting or time.monotonic() > give_up:
            return
        time.sleep(0.1)


def processes_of(execution_id: str) -> list[int]:
    """Host processes that carry the execution's marker (readable as root or the same uid): its
    id, or the name the warm runner it was given started under."""
    needles = {f"PLANQK_EXECUTION_ID={name}".encode() for name in {execution_id, *_MARKERS.get(execution_id, ())}}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if needles & set(fh.read().split(b"\0")):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    if stat[stat.rindex(")") + 2] not in "ZX":
                        found.append(int(entry.name))
        except OSError:
            continue
    return found


def local_runtime_under_test(name: str) -> Iterator[RuntimeUnderTest]:
    """The body of a module's ``local`` fixture: a local runtime on private folders named after
    ``name``, whose started executions and folders are removed afterwards."""
    data = _private_dir(name)
    source = _private_dir(f"{name}-src")
    runtime = LocalRuntime(LocalConfig(data_dir=data))
    rut = RuntimeUnderTest("local", runtime, {"kind": "local", "data_dir": str(data)}, source)
    yield rut
    for handle in rut.started:
        runtime.cleanup(handle)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)


def warm_runtime_under_test(name: str, *, sandbox: str = "bwrap", **pool: Any) -> Iterator[RuntimeUnderTest]:
    """The body of a fixture for a warm local runtime on private folders: ``sandbox`` ``bwrap``
    (the default) or ``none`` (as ``local-nosandbox``), ``pool`` overriding :data:`WARM_TEST_POOL`.
    Its executions, its runners and its folders are removed afterwards."""
    options: dict[str, Any] = {"data_dir": str(_private_dir(name)), "warm": {**WARM_TEST_POOL, **pool}}
    if sandbox == "none":
        python = _system_python()
        if python is None:
            pytest.skip("no Python that an unprivileged uid can run without a sandbox")
        options.update(sandbox="none", python=python)
    runtime = local_runtime(options)
    variant = "local-warm" if sandbox == "bwrap" else "local-nosandbox-warm"
    rut = RuntimeUnderTest(variant, runtime, {"kind": "local", **options}, _private_dir(f"{name}-src"))
    yield rut
    for handle in rut.started:
        runtime.cleanup(handle)
    stop_warm_runners(runtime)
    shutil.rmtree(options["data_dir"], ignore_errors=True)
    shutil.rmtree(rut.source_root, ignore_errors=True)
